"""Training with the paper's recipe on 1 CPU, N GPUs or N hosts (docs/design.md, "Training recipe").

One host trains with `model.fit` (`fit.py`: default strategy, or
`MirroredStrategy` over all visible GPUs). Several hosts (a `TF_CONFIG` naming
more than one task) train with `MultiWorkerMirroredStrategy` and a custom loop
over `strategy.run` (`multi_worker.py`), because Keras 3's `model.fit` fails
under that strategy (keras issue 20585). Both keep the same run directory
(`run_dir.py`, `run_checkpoint.py`).
"""

from keras_shiftinv._backend import require_tensorflow

require_tensorflow("keras_shiftinv.training (tf.data input)")

from keras_shiftinv.training.config import TrainConfig
from keras_shiftinv.training.recipe import weights_digest
from keras_shiftinv.training.trainer import train

__all__ = ["TrainConfig", "train", "weights_digest"]
