"""Multi-worker training: a custom `strategy.run` loop under `MultiWorkerMirroredStrategy`.

Keras 3's `model.fit` fails under this strategy (keras issue 20585), so the
loop is written out, and it drives the same callbacks as `fit.py` through a
`keras.callbacks.CallbackList`: the run directory is the same. Every worker
restores from the checkpoints in the shared model dir; the chief alone writes.
What differs from `fit.py`: no validation pass (`best.keras` follows the
training accuracy) and no progress bar (one line per epoch).
"""

import math

import keras
import tensorflow as tf

from keras_shiftinv.training import recipe
from keras_shiftinv.training.recipe import best_rate
from keras_shiftinv.training.recipe import build_model
from keras_shiftinv.training.recipe import train_dataset
from keras_shiftinv.training.recipe import weights_digest
from keras_shiftinv.training.run_checkpoint import RunCheckpoint
from keras_shiftinv.training.run_checkpoint import initial_state
from keras_shiftinv.training.throughput_meter import ThroughputMeter


def train_multi_worker(config, run, resume, info, steps, strategy, chief, metadata):
    """The custom loop from the last checkpoint (if `resume`) to `config.epochs`."""
    with strategy.scope():
        model, optimizer = build_model(config, info.num_classes, steps)
        model.compile(optimizer=optimizer, loss=recipe.loss())  # wraps a LossScaleOptimizer if mixed
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        state = (run.restore(model) if resume else None) or initial_state()
    per_example = recipe.loss(reduction=None)

    def step_fn(batch):
        images, labels = batch
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.nn.compute_average_loss(
                tf.cast(per_example(labels, logits), tf.float32), global_batch_size=config.batch_size
            )
            scaled = optimizer.scale_loss(loss)
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

    moving = [v for v in model.non_trainable_variables if v.dtype.startswith("float")]

    @tf.function
    def average_moving_statistics():
        # BatchNorm statistics are updated from each worker's own batches; average
        # them so that every worker (and every checkpoint) holds the same model.
        local = strategy.run(lambda: [tf.identity(v.value) for v in moving])
        for v, value in zip(moving, local):
            v.assign(strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None))

    start = state["epoch"]
    if start:
        print(f"Resuming {run.path} after epoch {start}/{config.epochs}", flush=True)
    checkpoint = RunCheckpoint(run, metadata, "accuracy", state)
    callbacks = [ThroughputMeter(config.batch_size)]
    if chief:  # the others train alongside and write nothing
        callbacks += [checkpoint, keras.callbacks.TensorBoard(run.file("logs"), write_graph=False)]
    callbacks = keras.callbacks.CallbackList(callbacks, model=model, epochs=config.epochs, steps=steps)
    if chief:
        checkpoint.publish()
    callbacks.on_train_begin()
    for epoch in range(start, config.epochs):
        dist_ds = strategy.distribute_datasets_from_function(
            lambda ctx, e=epoch: train_dataset(config, e, ctx.get_per_replica_batch_size(config.batch_size),
                                               steps, input_context=ctx)
        )
        iterator = iter(dist_ds)
        callbacks.on_epoch_begin(epoch)
        total_loss, total_correct = 0.0, 0.0
        for step in range(steps):
            loss, correct = train_step(iterator)
            total_loss += float(loss)
            total_correct += float(correct)
            callbacks.on_train_batch_end(step)
        average_moving_statistics()
        logs = {"loss": total_loss / steps, "accuracy": total_correct / (steps * config.batch_size)}
        callbacks.on_epoch_end(epoch, logs)
        print(f"Epoch {epoch + 1}/{config.epochs} - loss: {logs['loss']:.4f} - accuracy: {logs['accuracy']:.4f}",
              flush=True)
    callbacks.on_train_end()
    print(f"final weights sha256: {weights_digest(model)}", flush=True)
    rate = best_rate(checkpoint.state["rows"]) if chief else math.nan
    final = None
    if chief:
        final = run.save("final.keras", model, {**metadata, "train_images_per_second": rate}, config.epochs)
    return {"final_model": final, "model": model, "train_images_per_second": rate}
