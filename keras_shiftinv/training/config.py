"""`TrainConfig`: every setting of a training run, and the one home of their defaults.

The `shiftinv train` command line is built from these fields (each field's
`metadata` holds its flag's help text), so a default changes in one place.
"""

import dataclasses
import math

from keras_shiftinv import data
from keras_shiftinv._renames import renamed_fields
from keras_shiftinv.errors import UsageError
from keras_shiftinv.methods import METHODS

REFERENCE_BATCH = 128  # the paper's batch; the learning rate scales with batch / 128
PADDINGS = ("zeros", "reflect", "circular")
# Settings that do not change what is trained: a rerun may change them freely.
NOT_PART_OF_THE_RUN = ("data_dir", "manual_dir", "model_dir", "verbose")


def _field(default, help, **metadata):
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


@renamed_fields(model="method")
@dataclasses.dataclass
class TrainConfig:
    """Every setting of a training run; written to `<model_dir>/config.json`.

    `method` was called `model` before: `TrainConfig(model=...)` and
    `config.model` still work (a `DeprecationWarning`), and so does the
    `model` key in the `config.json` of an older run (`RunDir.read_config`).

    Example:
    >>> config = TrainConfig(dataset="fashion_mnist", batch_size=256).validate()
    >>> config.image_size, config.peak_learning_rate
    (32, 1.0)
    """

    method: str = _field("group", "downsampling method", choices=METHODS, old_flag="--model")
    dataset: str = _field(data.PAPER_DATASET, "dataset name", choices=data.DATASETS)
    data_dir: str = _field(None, "tfds data dir, Fashion-MNIST IDX dir, or image folder root")
    manual_dir: str = _field(None, "folder with ILSVRC2012_img_{train,val}.tar (imagenet2012)")
    model_dir: str = _field("runs/model", "where checkpoints, logs and models go (one run per folder)")
    epochs: int = _field(16, "number of epochs")
    batch_size: int = _field(128, "global batch size")
    learning_rate: float = _field(0.5, "peak learning rate for batch 128 (scaled linearly with the batch)")
    momentum: float = _field(0.9, "SGD momentum, in [0, 1)")
    weight_decay: float = _field(5e-5, "decoupled weight decay")
    width: float = _field(1.0, "channel multiplier")
    image_size: int = _field(None, "crop size (default: 224; 32 for fashion_mnist)")
    padding: str = _field("zeros", "padding of every layer", choices=PADDINGS)
    max_train_examples: int = _field(None, "keep the first N training examples")
    max_eval_examples: int = _field(None, "keep the first N validation examples")
    mixed_precision: bool = _field(False, "train in mixed_float16")
    jit_compile: bool = _field(False, "XLA-compile the train step")
    deterministic: bool = _field(False, "enable TensorFlow op determinism (slower; same seed, same weights)")
    seed: int = _field(0, "seed of the initial weights, shuffles and crops")
    cpu_replicas: int = _field(0, "split the CPU into N logical devices and mirror over them (testing)")
    validation: bool = _field(True, "evaluate on the validation split after each epoch", cli=False)
    verbose: int = _field(1, "0 silent, 1 progress bar, 2 one line per epoch", choices=(0, 1, 2))

    def validate(self):
        """Checks every setting (one-line `UsageError`s) and fills `image_size`.

        Returns:
            `self`.
        """
        _choice(self, "method", METHODS)
        _choice(self, "dataset", data.DATASETS)
        _choice(self, "padding", PADDINGS)
        for name in ("epochs", "batch_size", "image_size", "max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        _number(self, "learning_rate", lambda v: v > 0, "a positive finite number")
        _number(self, "width", lambda v: v > 0, "a positive finite number")
        _number(self, "weight_decay", lambda v: v >= 0, "a finite number >= 0")
        _number(self, "momentum", lambda v: 0 <= v < 1, "a number in [0, 1)")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"`seed` must be an integer >= 0. Received: seed={self.seed!r}")
        if not isinstance(self.cpu_replicas, int) or self.cpu_replicas < 0:
            raise UsageError(f"`cpu_replicas` must be an integer >= 0. Received: cpu_replicas={self.cpu_replicas!r}")
        if self.image_size is None:
            self.image_size = data.DEFAULT_IMAGE_SIZE[self.dataset]
        if self.image_size < 8:
            raise UsageError(f"`image_size` must be at least 8. Received: image_size={self.image_size}")
        return self

    @property
    def peak_learning_rate(self):
        return self.learning_rate * self.batch_size / REFERENCE_BATCH

    def to_dict(self):
        return dataclasses.asdict(self)

    def run_settings(self):
        """The settings that define the run (a rerun must repeat them to resume)."""
        return {k: v for k, v in self.to_dict().items() if k not in NOT_PART_OF_THE_RUN}


def _choice(config, name, choices):
    value = getattr(config, name)
    if value not in choices:
        raise UsageError(f"`{name}` must be one of {', '.join(choices)}. Received: {name}={value!r}")


def _number(config, name, ok, what):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise UsageError(f"`{name}` must be {what}. Received: {name}={value!r}")
