"""Dataset indexers: an official dataset tree -> DatasetIndex. One module per layout.

A dataset card (datasets/NAME.yaml) names its indexer in `format` and passes `index:` as keyword
arguments: INDEXERS[card.format](source_dir, **card.index). datasets/README.md lists the layouts.
"""

from tubelab.data.indexers.charades import index_charades
from tubelab.data.indexers.finegym import index_finegym
from tubelab.data.indexers.hmdb51 import index_hmdb51
from tubelab.data.indexers.kinetics import index_kinetics
from tubelab.data.indexers.ssv2 import index_ssv2
from tubelab.data.indexers.ucf101 import index_ucf101
from tubelab.data.indexers.ucfrep import index_ucfrep

INDEXERS = {
    "ucf101": index_ucf101,
    "hmdb51": index_hmdb51,
    "kinetics": index_kinetics,
    "ssv2": index_ssv2,
    "finegym": index_finegym,
    "charades": index_charades,
    "ucfrep": index_ucfrep,
}
