import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate: linear warm-up to `peak`, then cosine to ~0.

    Starts at `peak / div_factor`, reaches `peak` after `warmup_fraction` of
    `total_steps`, and anneals by a half cosine to `peak / final_div_factor`.

    Args:
        peak: float, the highest learning rate.
        total_steps: int, steps of the whole run.
        warmup_fraction: float in (0, 1), share of the steps spent warming up.
        div_factor: float, `peak / initial rate`.
        final_div_factor: float, `peak / final rate`.

    Example:
    >>> schedule = OneCycle(0.5, total_steps=16 * 10_000)
    >>> keras.optimizers.SGD(schedule, momentum=0.9)
    """

    def __init__(self, peak, total_steps, warmup_fraction=0.25, div_factor=25.0, final_div_factor=1e4):
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be positive. Received: total_steps={total_steps}")
        if not 0 < warmup_fraction < 1:
            raise ValueError(
                f"`warmup_fraction` must be in (0, 1). Received: warmup_fraction={warmup_fraction}"
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(1.0, self.warmup_fraction * self.total_steps)
        start, end = self.peak / self.div_factor, self.peak / self.final_div_factor
        rising = start + (self.peak - start) * step / warmup
        progress = ops.clip((step - warmup) / max(1.0, self.total_steps - warmup), 0.0, 1.0)
        falling = end + (self.peak - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }
