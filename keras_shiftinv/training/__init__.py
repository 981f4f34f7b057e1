"""Training with the paper's recipe on 1 CPU, N GPUs or N hosts (docs/design.md, "Training recipe").

One host trains with `model.fit` (`fit.py`: default strategy, or
`MirroredStrategy` over all visible GPUs). Several hosts (a `TF_CONFIG` naming
more than one task) train with `MultiWorkerMirroredStrategy` and a custom loop
over `strategy.run` (`multi_worker.py`), because Keras 3's `model.fit` fails
under that strategy (keras issue 20585). Both keep the same run directory
(`run_dir.py`, `run_checkpoint.py`).

The recipe's parts are public here, for the experiments and for users who
train their own way: `optimizer(config, total_steps)` (SGD, momentum,
decoupled weight decay, the `schedule`), `schedule(config, total_steps)`
(`one_cycle`), `loss()`, `train_dataset(config, epoch, batch_size, steps)`,
`RunLock` (one process per folder) and `ThroughputMeter` (images/second).
"""

from keras_shiftinv._backend import require_tensorflow

require_tensorflow("keras_shiftinv.training (tf.data input)")

from keras_shiftinv.training.config import TrainConfig
from keras_shiftinv.training.lock import RunLock
from keras_shiftinv.training.recipe import loss
from keras_shiftinv.training.recipe import one_cycle
from keras_shiftinv.training.recipe import optimizer
from keras_shiftinv.training.recipe import schedule
from keras_shiftinv.training.recipe import train_dataset
from keras_shiftinv.training.recipe import weights_digest
from keras_shiftinv.training.throughput_meter import ThroughputMeter
from keras_shiftinv.training.trainer import train

# The public face: the experiments (and users) take the recipe's parts from here, never from the modules.
__all__ = ["RunLock", "ThroughputMeter", "TrainConfig", "loss", "one_cycle", "optimizer", "schedule", "train",
           "train_dataset", "weights_digest"]
