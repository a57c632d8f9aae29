"""Feeding training loops: patch time-series datasets over the cube and the BigEarthNet v2 store,
chip-index sampling, epoch/rank/worker splitting (numpy), and a thin PyTorch adapter
(``eolab.train.torch``, needs the ``train`` extra)."""
