"""`python driver.py pretrain [overrides]`: `tubelab` with its FailureLog actor pinned to the driver's node.

Why: FailureLog is declared `num_cpus=0`, and Ray places an actor with no resource requirements on a
random node. On a cluster it can land on a (spot) train node; losing that node then fails the run
(ActorDiedError from check_decode_failures) even though Ray Train restores the workers. The fix
belongs where the actor is created (training/pretrain.py and training/finetune.py:
`FailureLog.options(scheduling_strategy=NodeAffinitySchedulingStrategy(<driver node>, soft=False))`);
until it lands there, this shim applies it so the node-loss test checks Ray Train's recovery
rather than that placement lottery. With the fix in place this file can go.
"""

import sys

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tubelab.data.decode import FailureLog
from tubelab.training import pretrain


class PinnedFailureLog:
    @staticmethod
    def remote(*args, **kwargs):
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        return FailureLog.options(scheduling_strategy=here).remote(*args, **kwargs)


if __name__ == "__main__":
    pretrain.FailureLog = PinnedFailureLog
    from tubelab.cli import main

    sys.exit(main(sys.argv[1:]))
