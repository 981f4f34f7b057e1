"""Single-host training with `model.fit`: one device, `MirroredStrategy` over local GPUs (TensorFlow),
or `keras.distribution.DataParallel` over the visible JAX devices (docs/backends.md)."""

import contextlib
import functools

import keras
import numpy as np

from keras_shiftinv import data
from keras_shiftinv.training import recipe
from keras_shiftinv.training.recipe import best_rate
from keras_shiftinv.training.recipe import build_model
from keras_shiftinv.training.recipe import train_dataset
from keras_shiftinv.training.run_checkpoint import RunCheckpoint
from keras_shiftinv.training.run_checkpoint import initial_state
from keras_shiftinv.training.throughput_meter import ThroughputMeter


class JaxDataParallel:
    """The JAX counterpart of `MirroredStrategy`, in the part of its interface training uses.

    With several JAX devices, `scope()` sets `keras.distribution.DataParallel`:
    the weights are replicated, every batch is split over the devices along
    its first axis, and the step is one program over the global batch (so
    BatchNorm sees the whole batch, as on one device). With one device it does
    nothing.

    Args:
        devices: the JAX device names (`keras.distribution.list_devices()`).
    """

    def __init__(self, devices):
        self.devices = list(devices)
        self.num_replicas_in_sync = len(self.devices)

    @property
    def name(self):
        return "DataParallel" if self.num_replicas_in_sync > 1 else "jax-default"

    def scope(self):
        if self.num_replicas_in_sync == 1:
            return contextlib.nullcontext()
        return keras.distribution.DataParallel(devices=self.devices).scope()


def build_compiled_state(model, image_size):
    """Builds the compiled loss and metrics on one blank image, so `fit` reads no batch ahead.

    For JAX only. Keras's JAX `fit` builds an unbuilt loss or metric by drawing one batch
    from a first iterator of the dataset, then starts training on a second
    one. Our per-epoch pipelines reshuffle and redraw their crops on every
    iteration, so that first epoch would train on other batches than on
    TensorFlow, and a resumed run on other batches than the uninterrupted
    one (docs/backends.md, "Same loss curve"). Built beforehand, nothing is
    drawn. No weight, optimizer or BatchNorm state changes (`training=False`);
    `fit` resets the metrics at each epoch.
    """
    x = np.zeros((1, image_size, image_size, 3), "float32")  # (batch, height, width, channels)
    y = np.zeros((1,), "int32")
    y_pred = model(x, training=False)
    model.compute_loss(x, y, y_pred)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()


def train_single_host(config, run, resume, info, val_info, steps, strategy, metadata):
    """`model.fit` from the last checkpoint (if `resume`) to `config.epochs`, then `final.keras`."""
    # Building, restoring and fitting all in the scope: a JAX distribution is read at each step.
    with strategy.scope():
        return _train(config, run, resume, info, val_info, steps, metadata)


def _train(config, run, resume, info, val_info, steps, metadata):
    model, optimizer = build_model(config, info.num_classes, steps)
    model.compile(
        optimizer=optimizer,
        loss=recipe.loss(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"),
        ],
        # JAX without jit runs op by op (about 100x slower here); --jit-compile is TensorFlow's XLA switch.
        jit_compile=True if keras.config.backend() == "jax" else config.jit_compile,
    )
    state = (run.restore(model) if resume else None) or initial_state()
    if keras.config.backend() == "jax":
        build_compiled_state(model, config.image_size)
    start = state["epoch"]
    if start:
        print(f"Resuming {run.path} after epoch {start}/{config.epochs}", flush=True)
    checkpoint = RunCheckpoint(run, metadata, "val_accuracy" if val_info else "accuracy", state)
    checkpoint.set_model(model)
    checkpoint.publish()  # finishes the derived files of an interrupted epoch end
    callbacks = [
        ThroughputMeter(config.batch_size),  # first: its rate goes into the logged row
        checkpoint,
        keras.callbacks.TensorBoard(run.file("logs"), write_graph=False),
        keras.callbacks.TerminateOnNaN(),
    ]
    if start < config.epochs:
        # One pipeline per epoch (see `recipe.epoch_seed`), consumed back to back.
        epochs = [train_dataset(config, e, config.batch_size, steps) for e in range(start, config.epochs)]
        val_ds = None
        if val_info:
            val_ds, _ = data.load(config.dataset, "validation", batch_size=config.batch_size,
                                  image_size=config.image_size, seed=config.seed,
                                  max_examples=config.max_eval_examples, data_dir=config.data_dir,
                                  manual_dir=config.manual_dir)
        model.fit(functools.reduce(lambda a, b: a.concatenate(b), epochs), epochs=config.epochs,
                  initial_epoch=start, steps_per_epoch=steps, validation_data=val_ds, callbacks=callbacks,
                  verbose=config.verbose, shuffle=False)
    rate = best_rate(checkpoint.state["rows"])
    final = run.save("final.keras", model, {**metadata, "train_images_per_second": rate}, config.epochs)
    return {"final_model": final, "model": model, "train_images_per_second": rate}
