"""Minimal reproduction: Keras's JAX `fit` iterates a tf.data dataset twice.

On JAX, `model.fit` builds an unbuilt compiled loss / metric by drawing one
batch from a first iterator of the dataset (`Trainer._symbolic_build`), then
calls `epoch_iterator.reset()` and trains on a second iterator (the reset is
the fix of keras-team/keras#20394, "Batch consumed during symbolic build is not
processed during training"). A pipeline that reshuffles or redraws its
augmentation on every iteration then trains its first epoch on other batches
than TensorFlow's `fit` (which does not re-iterate). Building the loss and
metrics beforehand (`keras_shiftinv.training.fit.build_compiled_state`) leaves
one iteration.

    KERAS_BACKEND=jax python benchmarks/jax_fit_reads_ahead.py

prints how many times the dataset was iterated, without and with the
pre-build (JAX, keras 3.15.1: 2 and 1; TensorFlow: 1 and 1).
"""

import keras
import numpy as np
import tensorflow as tf


def iterations_of_one_fit(prebuild):
    iterations = []

    def batches():
        iterations.append(1)  # one call per iterator of the dataset
        for _ in range(2):
            yield np.ones((4, 3), "float32"), np.zeros((4,), "int32")

    ds = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec((4, 3), tf.float32), tf.TensorSpec((4,), tf.int32)))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    if prebuild:
        x, y = np.zeros((1, 3), "float32"), np.zeros((1,), "int32")
        y_pred = model(x, training=False)
        model.compute_loss(x, y, y_pred)
        model.compute_metrics(x, y, y_pred, sample_weight=None)
        model.reset_metrics()
    model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
    return len(iterations)


if __name__ == "__main__":
    print(f"backend {keras.config.backend()}, keras {keras.__version__}: dataset iterated "
          f"{iterations_of_one_fit(False)} times by fit, {iterations_of_one_fit(True)} with the loss and "
          "metrics built beforehand")
