"""`ThroughputMeter`: training images per second, added to each epoch's logs."""

import time

import keras


class ThroughputMeter(keras.callbacks.Callback):
    """Training images/second, from the first to the last batch of each epoch.

    The first batch of an epoch (tracing, pipeline start) is not counted. The
    epoch's rate is added to its logs as `images_per_second` (so it reaches
    `training_log.csv` and TensorBoard); `images_per_second` here keeps the best.

    Args:
        batch_size: global batch size.
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.images_per_second = float("nan")
        self._times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._times = []

    def on_train_batch_end(self, batch, logs=None):
        self._times.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        if len(self._times) > 1:
            rate = (len(self._times) - 1) * self.batch_size / (self._times[-1] - self._times[0])
            if logs is not None:
                logs["images_per_second"] = rate
            if not rate <= self.images_per_second:  # also replaces the initial nan
                self.images_per_second = rate
