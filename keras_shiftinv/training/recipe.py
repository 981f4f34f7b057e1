"""The paper's recipe (docs/design.md, "Training recipe"): model, optimizer, schedule, loss, per-epoch data.

Shared by the single-host (`fit.py`) and multi-worker (`multi_worker.py`) paths, and by the
experiments through `keras_shiftinv.training` (its public face).
"""

import hashlib
import math

import keras
import numpy as np

from keras_shiftinv import data
from keras_shiftinv.models import resnet18

WARMUP_FRACTION = 0.25  # share of the steps spent warming up
DIV_FACTOR = 25.0  # peak / initial learning rate
FINAL_DIV_FACTOR = 1e4  # peak / final learning rate


def one_cycle(peak, total_steps):
    """One-cycle learning rate as Keras's own `CosineDecay` (no custom class to register).

    Linear warm-up from `peak / 25` to `peak` over the first quarter of the
    steps, then a half cosine down to `peak / 1e4`.

    Example:
    >>> schedule = one_cycle(0.5, total_steps=100)
    >>> [round(float(schedule(step)), 6) for step in (0, 25, 100)]
    [0.02, 0.5, 5e-05]
    """
    warmup = max(1, int(WARMUP_FRACTION * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        peak / DIV_FACTOR,
        decay_steps=max(1, total_steps - warmup),
        alpha=1.0 / FINAL_DIV_FACTOR,
        warmup_target=peak,
        warmup_steps=warmup,
    )


def schedule(config, total_steps):
    """The recipe's learning rate over `total_steps`: `one_cycle` peaking at `config.peak_learning_rate`.

    Args:
        config: a validated `TrainConfig`.
        total_steps: the optimizer steps of the whole run (epochs x steps per epoch).
    """
    return one_cycle(config.peak_learning_rate, total_steps)


def optimizer(config, total_steps):
    """The recipe's optimizer: SGD with `config.momentum`, decoupled `config.weight_decay`, `schedule`.

    Args:
        config: a validated `TrainConfig`.
        total_steps: the optimizer steps of the whole run (epochs x steps per epoch).

    Example:
    >>> from keras_shiftinv.training import TrainConfig
    >>> config = TrainConfig(dataset="fashion_mnist", learning_rate=0.5, batch_size=64).validate()
    >>> sgd = optimizer(config, total_steps=100)
    >>> round(float(sgd.learning_rate), 4), sgd.momentum  # before the first step: peak / 25
    (0.01, 0.9)
    """
    return keras.optimizers.SGD(schedule(config, total_steps), momentum=config.momentum,
                                weight_decay=config.weight_decay)


def loss(reduction="sum_over_batch_size"):
    """The recipe's loss: sparse categorical cross-entropy on logits."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)


def best_rate(rows):
    """The best `images_per_second` of the logged epochs (nan if none)."""
    rates = [r["images_per_second"] for r in rows if math.isfinite(r.get("images_per_second", math.nan))]
    return max(rates, default=math.nan)


def build_model(config, num_classes, steps_per_epoch):
    """The ResNet-18 of `config.method` and the recipe's `optimizer`."""
    model = resnet18(
        config.method,
        num_classes=num_classes,
        input_shape=(config.image_size, config.image_size, 3),
        width=config.width,
        padding=config.padding,
    )
    return model, optimizer(config, config.epochs * steps_per_epoch)


def epoch_seed(seed, epoch):
    """The data seed of one epoch, so that a resumed run sees the same batches.

    Each epoch gets its own pipeline seeded from `(seed, epoch)`: a run resumed
    at epoch 5 reads epoch 5's shuffle and crops, not epoch 0's again.

    Example:
    >>> epoch_seed(0, 3) == epoch_seed(0, 3) != epoch_seed(0, 4)
    True
    """
    return int.from_bytes(hashlib.sha256(f"{seed}/{epoch}".encode()).digest()[:4], "little")


def train_dataset(config, epoch, batch_size, steps, input_context=None):
    """The `steps` training batches of one epoch (see `epoch_seed`)."""
    ds, _ = data.load(
        config.dataset, "train", batch_size=batch_size, image_size=config.image_size, training=True,
        seed=epoch_seed(config.seed, epoch), max_examples=config.max_train_examples,
        data_dir=config.data_dir, manual_dir=config.manual_dir, input_context=input_context,
    )
    return ds.take(steps)


def weights_digest(model):
    """sha256 of all of a model's weights: equal digests mean equal weights."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w.value)).tobytes())
    return digest.hexdigest()
