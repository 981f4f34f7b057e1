"""The common tail of every input pipeline: shuffle, transform, batch, prefetch."""

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def finish(ds, transform, batch_size, training, seed, max_examples=None, shuffle_buffer=10_000):
    """Turns a dataset of `(encoded_or_raw, label)` into batches.

    `transform(x, seed)` maps one example with a stateless seed of shape (2,),
    drawn from `seed` so that a run is reproducible; a new seed is drawn every
    epoch. Training batches drop the remainder (same shapes on every replica).
    """
    if max_examples is not None:
        ds = ds.take(max_examples)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))
    ds = ds.map(lambda example, s: (transform(example[0], s), example[1]), num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def shard(ds, input_context):
    """Per-host sharding under multi-worker training (no-op for one pipeline)."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return ds
    return ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
