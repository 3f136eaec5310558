"""The paper's evaluation: metrics (:mod:`tcvom.evaluation.metrics`), mattes scored over a
dataset (:mod:`tcvom.evaluation.mattes`) and trimap propagation scored by mIoU
(:mod:`tcvom.evaluation.trimaps`). The datasets themselves are in :mod:`tcvom.data`."""
