#!/usr/bin/env bash
# Started on the head by infra/aws/cluster.yaml: the MLflow server with authentication on
# (basic-auth app), PostgreSQL (e.g. RDS) as its backend and S3 for artifacts. It listens on the
# head's private address; the security group admits only the cluster's own nodes, so from a laptop
# it is reached through SSH (`ray attach infra/aws/cluster.yaml -p 5000`). Database URIs and the
# admin password come from SSM Parameter Store (SecureString), never from this repository.
#   $1: S3 URI for artifacts, e.g. s3://my-bucket/tubelab/mlflow;  $2: the AWS region
set -euo pipefail
export AWS_DEFAULT_REGION="$2"
_ssm() { aws ssm get-parameter --name "$1" --with-decryption --query Parameter.Value --output text; }
curl -sf http://127.0.0.1:5000/health > /dev/null && exit 0   # already serving (a repeated `ray up`)
umask 077
export MLFLOW_BACKEND_STORE_URI="$(_ssm /tubelab/mlflow/backend-store-uri)"   # postgresql://...
export MLFLOW_AUTH_ADMIN_USERNAME=admin
export MLFLOW_AUTH_ADMIN_PASSWORD="$(_ssm /tubelab/mlflow/admin-password)"
export MLFLOW_AUTH_CONFIG_PATH="$HOME/.mlflow_basic_auth.ini"   # mode 600 (umask): holds the auth DB URI
printf '[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = %s\nadmin_username = admin\n' \
  "$(_ssm /tubelab/mlflow/auth-database-uri)" > "$MLFLOW_AUTH_CONFIG_PATH"
nohup mlflow server --app-name basic-auth --host 0.0.0.0 --port 5000 --artifacts-destination "$1" \
  > "$HOME/mlflow-server.log" 2>&1 &
