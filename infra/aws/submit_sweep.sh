#!/usr/bin/env bash
# Submit the demo sweep to the cluster of infra/aws/cluster.yaml (tunnel first: `ray dashboard
# infra/aws/cluster.yaml` in another terminal). Extra arguments are passed on as overrides, e.g.
#   infra/aws/submit_sweep.sh ablation=table3_motion
# resources.cluster_cpus is what the worker groups can grow to (decode 8 x 16 + train 2 x 8): the
# job starts on a head with no workers and the autoscaler adds them (tests/infra checks the sum).
set -euo pipefail
cd "$(dirname "$0")/../.."
export RAY_ADDRESS="${RAY_ADDRESS:-http://127.0.0.1:8265}" RAY_AUTH_MODE=token
exec ray job submit --runtime-env infra/aws/runtime_env.yaml --working-dir . -- \
  python jobs/sweep.py ablation=demo storage=s3 tracking=server \
  resources.decode_node_resource=decode_node resources.train_node_resource=train_node \
  resources.train_workers=2 resources.gpus_per_train_worker=1 resources.cpus_per_train_worker=4 \
  resources.decode_actors=8 resources.cluster_cpus=144 resources.max_concurrent_trials=1 \
  resources.cluster_config=infra/aws/cluster.yaml "$@"
