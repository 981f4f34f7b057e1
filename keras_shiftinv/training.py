"""Training with the paper's recipe (DESIGN.md §4) on 1 CPU, N GPUs or N hosts.

One host trains with `model.fit` (default strategy, or `MirroredStrategy` over
all visible GPUs). Several hosts (a `TF_CONFIG` naming more than one task)
train with `MultiWorkerMirroredStrategy` and a custom loop over `strategy.run`,
because Keras 3's `model.fit` fails under that strategy (keras issue 20585).
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_shiftinv import data
from keras_shiftinv.errors import UsageError
from keras_shiftinv.models import DOWNSAMPLE_METHODS
from keras_shiftinv.models import resnet18
from keras_shiftinv.schedules import OneCycle

DATASETS = ("fashion_mnist", "imagenet2012", "folder")
REFERENCE_BATCH = 128  # the paper's batch; the learning rate scales with batch / 128
DEFAULT_IMAGE_SIZE = {"fashion_mnist": 32, "imagenet2012": 224, "folder": 224}


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a training run; written to `<model_dir>/config.json`."""

    model: str = "group"
    dataset: str = "imagenet2012"
    data_dir: str = None
    manual_dir: str = None
    model_dir: str = "runs/model"
    epochs: int = 16
    batch_size: int = 128
    learning_rate: float = 0.5
    momentum: float = 0.9
    weight_decay: float = 5e-5
    width: float = 1.0
    image_size: int = None
    padding: str = "zeros"
    max_train_examples: int = None
    max_eval_examples: int = None
    mixed_precision: bool = False
    jit_compile: bool = False
    seed: int = 0
    cpu_replicas: int = 0
    validation: bool = True
    verbose: int = 1

    def validate(self):
        if self.model not in DOWNSAMPLE_METHODS:
            raise UsageError(f"unknown model {self.model!r}; choose one of {', '.join(DOWNSAMPLE_METHODS)}")
        if self.dataset not in DATASETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise UsageError(f"--learning-rate must be positive, got {self.learning_rate}")
        if self.width <= 0:
            raise UsageError(f"--width must be positive, got {self.width}")
        if self.dataset == "folder" and not self.data_dir:
            raise UsageError("--dataset folder needs --data-dir DIR (DIR/train/<class>/<image>, optional DIR/val)")
        if self.data_dir and not os.path.isdir(self.data_dir):
            raise UsageError(f"--data-dir {self.data_dir} does not exist")
        if self.image_size is None:
            self.image_size = DEFAULT_IMAGE_SIZE[self.dataset]
        if self.image_size < 8:
            raise UsageError(f"--image-size must be at least 8, got {self.image_size}")
        return self

    @property
    def peak_learning_rate(self):
        return self.learning_rate * self.batch_size / REFERENCE_BATCH


# --- data -----------------------------------------------------------------


def dataset_info(config):
    """`(num_classes, num_train_examples, has_validation)` without reading images."""
    if config.dataset == "fashion_mnist":
        n = data.fashion_mnist_num_examples("train", config.data_dir)
        num_classes, has_val = data.FASHION_MNIST_CLASSES, True
    elif config.dataset == "imagenet2012":
        builder = data.prepare_imagenet2012(config.data_dir, config.manual_dir)
        n = builder.info.splits["train"].num_examples if "train" in builder.info.splits else 0
        num_classes, has_val = data.IMAGENET_CLASSES, "validation" in builder.info.splits
        if n == 0:
            raise UsageError("imagenet2012 has no train split: put ILSVRC2012_img_train.tar in the manual dir")
    else:
        train_dir, val_dir = folder_splits(config.data_dir)
        paths, _, names, _ = data.list_image_folder(train_dir)
        n, num_classes, has_val = len(paths), len(names), val_dir is not None
    if config.max_train_examples:
        n = min(n, config.max_train_examples)
    return num_classes, n, has_val


def folder_splits(directory):
    train = os.path.join(directory, "train")
    if not os.path.isdir(train):
        return directory, None
    for name in ("val", "validation", "test"):
        if os.path.isdir(os.path.join(directory, name)):
            return train, os.path.join(directory, name)
    return train, None


def make_dataset(config, training, batch_size, input_context=None, crop=True):
    """The batched dataset for the config's data, train or evaluation split."""
    common = {
        "batch_size": batch_size,
        "image_size": config.image_size,
        "training": training,
        "crop": crop,
        "seed": config.seed,
        "max_examples": config.max_train_examples if training else config.max_eval_examples,
        "input_context": input_context,
    }
    if config.dataset == "fashion_mnist":
        return data.fashion_mnist("train" if training else "test", data_dir=config.data_dir, **common)
    if config.dataset == "imagenet2012":
        split = "train" if training else "validation"
        return data.imagenet2012(split, data_dir=config.data_dir, manual_dir=config.manual_dir, **common)
    train_dir, val_dir = folder_splits(config.data_dir)
    ds, _ = data.image_folder(train_dir if training else val_dir, **common)
    return ds


# --- model ----------------------------------------------------------------


def build_model(config, num_classes, steps_per_epoch):
    model = resnet18(
        config.model,
        num_classes=num_classes,
        input_shape=(config.image_size, config.image_size, 3),
        width=config.width,
        padding=config.padding,
    )
    schedule = OneCycle(config.peak_learning_rate, total_steps=config.epochs * steps_per_epoch)
    optimizer = keras.optimizers.SGD(
        schedule, momentum=config.momentum, weight_decay=config.weight_decay
    )
    return model, optimizer


def loss_fn():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def weights_digest(model):
    """sha256 of all of a model's weights: equal digests mean equal weights."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w.value)).tobytes())
    return digest.hexdigest()


# --- entry point ------------------------------------------------------------


class ThroughputMeter(keras.callbacks.Callback):
    """Training images/second, from the first to the last batch of each epoch.

    The first batch of an epoch (tracing, pipeline start) is not counted; the
    best epoch is kept.
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.images_per_second = float("nan")

    def on_epoch_begin(self, epoch, logs=None):
        self._times = []

    def on_train_batch_end(self, batch, logs=None):
        self._times.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        if len(self._times) > 1:
            rate = (len(self._times) - 1) * self.batch_size / (self._times[-1] - self._times[0])
            if not rate <= self.images_per_second:  # also replaces the initial nan
                self.images_per_second = rate


def train(config):
    """Trains per `config`.

    Returns:
        dict with `final_model` (path of `final.keras`, None on non-chief
        workers), `model` (the trained model) and `train_images_per_second`.
    """
    config.validate()
    if config.cpu_replicas > 1:
        split_cpu(config.cpu_replicas)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)
    if is_multi_worker():
        return train_multi_worker(config)
    return train_single_host(config)


def split_cpu(n):
    """Splits the CPU into `n` logical devices (to run the multi-replica path on CPU)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def single_host_strategy(config):
    if config.cpu_replicas > 1:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][: config.cpu_replicas]
        return tf.distribute.MirroredStrategy(devices)
    if len(tf.config.list_physical_devices("GPU")) >= 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker():
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return sum(len(v) for v in cluster.values()) > 1


def check_batch(config, replicas):
    if config.batch_size % replicas:
        raise UsageError(
            f"--batch-size {config.batch_size} is not divisible by the {replicas} replicas; "
            f"use a multiple of {replicas}"
        )


def prepare_run(config, replicas, write=True, **extra):
    """Checks the batch, sizes the data and (if `write`) writes config.json.

    Returns `(num_classes, num_train_examples, has_validation, steps_per_epoch)`.
    """
    check_batch(config, replicas)
    num_classes, num_train, has_val = dataset_info(config)
    steps = max(1, num_train // config.batch_size)
    if write:
        resolved = {"replicas": replicas, "num_classes": num_classes, "train_examples": num_train,
                    "steps_per_epoch": steps, "peak_learning_rate": config.peak_learning_rate, **extra}
        os.makedirs(config.model_dir, exist_ok=True)
        with open(os.path.join(config.model_dir, "config.json"), "w") as f:
            json.dump({**dataclasses.asdict(config), **resolved}, f, indent=2)
    return num_classes, num_train, has_val, steps


def train_single_host(config):
    strategy = single_host_strategy(config)
    num_classes, _, has_val, steps = prepare_run(config, strategy.num_replicas_in_sync)
    train_ds = make_dataset(config, True, config.batch_size)
    has_val = has_val and config.validation
    val_ds = make_dataset(config, False, config.batch_size) if has_val else None
    with strategy.scope():
        model, optimizer = build_model(config, num_classes, steps)
        model.compile(
            optimizer=optimizer,
            loss=loss_fn(),
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"),
            ],
            jit_compile=config.jit_compile,
        )
    d = config.model_dir
    monitor = "val_accuracy" if has_val else "accuracy"
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(d, "backup")),
        keras.callbacks.ModelCheckpoint(os.path.join(d, "best.keras"), monitor=monitor, mode="max", save_best_only=True),
        keras.callbacks.ModelCheckpoint(os.path.join(d, "last.keras")),
        keras.callbacks.CSVLogger(os.path.join(d, "training_log.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(d, "logs")),
        keras.callbacks.TerminateOnNaN(),
        ThroughputMeter(config.batch_size),
    ]
    model.fit(train_ds, epochs=config.epochs, validation_data=val_ds, callbacks=callbacks,
              verbose=config.verbose, shuffle=False)  # the pipeline shuffles
    return {
        "final_model": save_final(model, d),
        "model": model,
        "train_images_per_second": callbacks[-1].images_per_second,
    }


def save_final(model, model_dir):
    """Writes `final.keras` atomically (temp file, then rename)."""
    path = os.path.join(model_dir, "final.keras")
    tmp = os.path.join(model_dir, ".final.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return path


def train_multi_worker(config):
    """Custom `strategy.run` loop under `MultiWorkerMirroredStrategy`.

    Every worker restores from, and the chief alone writes, the checkpoints in
    `<model_dir>/backup` (a filesystem all hosts see), so a killed run resumes
    at its last finished epoch. The chief writes the logs and final model.
    """
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    is_chief = resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )
    num_classes, _, _, steps = prepare_run(
        config, strategy.num_replicas_in_sync, write=is_chief, strategy="MultiWorkerMirroredStrategy"
    )
    dist_ds = strategy.distribute_datasets_from_function(
        lambda ctx: make_dataset(config, True, ctx.get_per_replica_batch_size(config.batch_size), input_context=ctx)
    )
    with strategy.scope():
        model, optimizer = build_model(config, num_classes, steps)
        if config.mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    per_example = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def step_fn(batch):
        images, labels = batch
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.nn.compute_average_loss(
                tf.cast(per_example(labels, logits), tf.float32), global_batch_size=config.batch_size
            )
            scaled = optimizer.scale_loss(loss) if config.mixed_precision else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels), tf.float32)
        return loss, tf.reduce_sum(correct)

    @tf.function(jit_compile=config.jit_compile)
    def train_step(iterator):
        loss, correct = strategy.run(step_fn, args=(next(iterator),))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
        )

    state = [v for v in model.non_trainable_variables if v.dtype.startswith("float")]

    @tf.function
    def average_state():
        # BatchNorm statistics are updated from each worker's own batches; average
        # them so that every worker (and every checkpoint) holds the same model.
        local = strategy.run(lambda: [tf.identity(v.value) for v in state])
        for v, value in zip(state, local):
            v.assign(strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None))

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch)
    backup_dir = os.path.join(config.model_dir, "backup")
    write_dir = backup_dir if is_chief else tempfile.mkdtemp(prefix="shiftinv-worker-")
    latest = tf.train.latest_checkpoint(backup_dir)
    if latest:
        checkpoint.restore(latest)
        print(f"Restored {latest}: resuming at epoch {int(epoch.numpy()) + 1}", flush=True)
    manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=1)
    log_path = os.path.join(config.model_dir, "training_log.csv")
    rate = float("nan")
    while int(epoch.numpy()) < config.epochs:
        iterator = iter(dist_ds)
        total_loss, total_correct = 0.0, 0.0
        for step in range(steps):
            loss, correct = train_step(iterator)
            total_loss += float(loss)
            total_correct += float(correct)
            if step == 0:
                started = time.perf_counter()
        if steps > 1:
            rate = (steps - 1) * config.batch_size / (time.perf_counter() - started)
        average_state()
        epoch.assign_add(1)
        manager.save()  # collective: every worker takes part, only the chief's copy is kept
        row = (int(epoch.numpy()), total_loss / steps, total_correct / (steps * config.batch_size))
        print(f"Epoch {row[0]}/{config.epochs} - loss: {row[1]:.4f} - accuracy: {row[2]:.4f}", flush=True)
        if is_chief:
            new = not os.path.exists(log_path)
            with open(log_path, "a") as f:
                f.write("epoch,loss,accuracy\n" if new else "")
                f.write(f"{row[0] - 1},{row[1]},{row[2]}\n")
    if not is_chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    print(f"final weights sha256: {weights_digest(model)}", flush=True)
    path = save_final(model, config.model_dir) if is_chief else None
    return {"final_model": path, "model": model, "train_images_per_second": rate}
