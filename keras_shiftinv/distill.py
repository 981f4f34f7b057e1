"""Distillation without labels: a converted model learns the original's outputs.

`distill(converted, original, data)` trains `converted` (the student) so
that its temperature-softened class distribution matches the frozen
`original`'s (the teacher) on unlabelled images: the loss is
`T**2 * KL(softmax(teacher / T) || softmax(student / T))` averaged over the
batch (Hinton et al., 2015; the `T**2` keeps gradient sizes comparable
across temperatures). The schedule is one suited to fine-tuning a model
that is already close: Adam at a small rate (default `1e-4`) decayed by a
cosine to zero over the run, no warm-up, no weight decay.

Two options (issue 25), both off by default:

- `freeze_batch_norm=True`: the student's `BatchNormalization` layers run in
  inference mode with their statistics and affine weights fixed during the
  run (e.g. the statistics that calibration re-estimated), instead of
  normalizing each batch by its own statistics and updating the moving ones.
- `feature_layers=(names...)`, `feature_weight=w`: adds `w` times the mean
  squared difference of the two models' outputs of each named layer, each
  first averaged over its spatial axes (`feature_loss`). Averaging keeps the
  term meaningful for the `-aps` methods, whose feature maps are circular
  shifts of the original's; the names must exist in both models (`convert`
  keeps the names of the layers it copies, e.g. ResNet-18's `stageS_blockB_out`).
  `feature_pooling="none"` matches the maps pixel by pixel instead, for
  students on the teacher's sampling grid (`group`, `conv3d`, `blur`).

`Distiller` is the same thing for plain `model.fit` code: a `keras.Model`
whose `call` is the student's and whose loss is the distillation loss; save
the student (`distiller.student`), never the wrapper.
"""

import keras
import numpy as np
from keras import ops


def distillation_loss(teacher_outputs, student_outputs, temperature=4.0, from_logits=True):
    """`T**2 * KL(softmax(t / T) || softmax(s / T))`, averaged over the batch.

    Args:
        teacher_outputs: `(B, classes)` teacher logits (or probabilities).
        student_outputs: `(B, classes)` student logits (or probabilities).
        temperature: `T > 0`.
        from_logits: False if both models end in a softmax (their outputs
            are then turned back into log-probabilities first).

    Example:
    >>> t = np.array([[2.0, 0.0, -1.0]])
    >>> float(distillation_loss(t, t))
    0.0
    >>> float(distillation_loss(t, np.zeros((1, 3)), temperature=1.0)) > 0
    True
    """
    t = ops.cast(teacher_outputs, "float32")
    s = ops.cast(student_outputs, "float32")
    if not from_logits:
        t, s = ops.log(ops.maximum(t, 1e-12)), ops.log(ops.maximum(s, 1e-12))
    log_p = ops.log_softmax(t / temperature, axis=-1)
    log_q = ops.log_softmax(s / temperature, axis=-1)
    kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)
    return temperature**2 * ops.mean(kl)


FEATURE_POOLINGS = ("mean", "none")


def feature_loss(teacher_features, student_features, pooling="mean"):
    """Mean over layers of the mean squared difference of (spatially averaged) features.

    Args:
        teacher_features: list of `(B, ..., C)` teacher feature maps.
        student_features: the student's, same shapes (one per teacher map).
        pooling: `"mean"` averages each map over its spatial axes first;
            `"none"` compares them pixel by pixel.

    Example:
    >>> t = [np.ones((2, 4, 4, 3)), np.zeros((2, 2, 2, 5))]
    >>> float(feature_loss(t, t))
    0.0
    >>> float(feature_loss(t, [np.zeros((2, 4, 4, 3)), np.zeros((2, 2, 2, 5))]))
    0.5
    >>> float(feature_loss([np.eye(2)[None, :, :, None]], [np.zeros((1, 2, 2, 1))], pooling="none"))
    0.5
    """
    losses = []
    for t, s in zip(teacher_features, student_features, strict=True):
        axes = tuple(range(1, len(t.shape) - 1)) if pooling == "mean" else ()  # (B, ..., C) -> (B, C)
        t = ops.mean(ops.cast(t, "float32"), axis=axes) if axes else ops.cast(t, "float32")
        s = ops.mean(ops.cast(s, "float32"), axis=axes) if axes else ops.cast(s, "float32")
        losses.append(ops.mean(ops.square(t - s)))
    return ops.mean(ops.stack(losses))


def _with_features(model, names):
    """`model` as a functional model whose outputs are `[output, *named layers' outputs]`."""
    try:
        features = [model.get_layer(name).output for name in names]
    except ValueError as error:
        raise ValueError(f"Argument `feature_layers` names a layer missing from {model.name!r} ({error}). "
                         f"Received: feature_layers={list(names)}") from None
    return keras.Model(model.input, [model.outputs[0], *features])


def _batch_norms(model):
    """Every `BatchNormalization` layer of `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(_batch_norms(layer))
    return found


class Distiller(keras.Model):
    """Trains `student` to match the frozen `teacher` (no labels needed).

    Its `call` is the student's; `compute_loss` is `distillation_loss` of
    the teacher's and the student's outputs on the same inputs (the teacher
    runs in inference mode, its weights frozen). Labels in the data are
    ignored. Not meant to be saved: save `distiller.student`.

    Args:
        student: the model to train (e.g. the output of `convert`).
        teacher: the model to match (e.g. the original); frozen here.
        temperature: the softening temperature `T`.
        from_logits: False if both models end in a softmax.
        feature_layers: names of layers of both models whose spatially
            averaged outputs are matched too (`feature_loss`); then `call`
            returns `[logits, *features]`.
        feature_weight: the weight of `feature_loss` in the loss.
        feature_pooling: `"mean"` (spatial means, any method) or `"none"`
            (pixel by pixel; only meaningful where the student samples on the
            teacher's grid, i.e. not for the `-aps` methods).
        teacher_shifts: `n > 1` replaces the teacher's target by its softened
            class distribution averaged over the `n * n` circular shifts of
            the input by `(i, j)`, `0 <= i, j < n` (images `(B, H, W, C)`;
            logits only): a shift-invariant student then gets one target
            per image instead of the teacher's shift-dependent ones.

    Example:
    >>> inputs = keras.Input((4,))
    >>> teacher = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    >>> student = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    >>> distiller = Distiller(student, teacher, temperature=2.0)
    >>> distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> before = float(distillation_loss(teacher(x), student(x), 2.0))
    >>> _ = distiller.fit(x, epochs=20, batch_size=16, verbose=0)
    >>> float(distillation_loss(teacher(x), student(x), 2.0)) < before
    True
    """

    def __init__(self, student, teacher, temperature=4.0, from_logits=True, feature_layers=(),
                 feature_weight=0.0, teacher_shifts=1, feature_pooling="mean", **kwargs):
        super().__init__(**kwargs)
        if feature_pooling not in FEATURE_POOLINGS:
            raise ValueError(f"Argument `feature_pooling` must be one of {FEATURE_POOLINGS}. "
                             f"Received: feature_pooling={feature_pooling!r}")
        self.feature_pooling = feature_pooling
        if not temperature > 0:
            raise ValueError(f"Argument `temperature` must be > 0. Received: temperature={temperature}")
        if not feature_weight >= 0:
            raise ValueError(f"Argument `feature_weight` must be >= 0. Received: feature_weight={feature_weight}")
        if not isinstance(teacher_shifts, int) or teacher_shifts < 1 or (teacher_shifts > 1 and not from_logits):
            raise ValueError("Argument `teacher_shifts` must be an int >= 1 (1 unless `from_logits`). "
                             f"Received: teacher_shifts={teacher_shifts!r}")
        self.teacher_shifts = teacher_shifts
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.from_logits = from_logits
        self.feature_layers = tuple(feature_layers)
        self.feature_weight = float(feature_weight)
        if self.feature_layers:
            self.student_features = _with_features(student, self.feature_layers)
            self.teacher_features = _with_features(teacher, self.feature_layers)

    def call(self, inputs, training=False):
        if self.feature_layers:
            return self.student_features(inputs, training=training)
        return self.student(inputs, training=training)

    def shift_averaged(self, x, logits):
        """`T * log` of the mean over `teacher_shifts**2` circular shifts of `softmax(teacher / T)`
        (logits whose softened distribution is that mean); `logits`: the unshifted teacher's."""
        n, t = self.teacher_shifts, self.temperature
        log_probs = [ops.log_softmax(logits / t, axis=-1)]
        for i in range(n):
            for j in range(n):
                if i or j:
                    shifted = ops.roll(ops.roll(x, i, axis=1), j, axis=2)
                    log_probs.append(ops.log_softmax(self.teacher(shifted, training=False) / t, axis=-1))
        mean = ops.logsumexp(ops.stack(log_probs), axis=0) - np.log(len(log_probs))  # (B, classes)
        return t * mean

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self.feature_layers:
            teacher = self.teacher(x, training=False)
            teacher = ops.stop_gradient(self.shift_averaged(x, teacher) if self.teacher_shifts > 1 else teacher)
            return distillation_loss(teacher, y_pred, self.temperature, self.from_logits)
        teacher = [ops.stop_gradient(t) for t in self.teacher_features(x, training=False)]
        if self.teacher_shifts > 1:
            teacher[0] = ops.stop_gradient(self.shift_averaged(x, teacher[0]))
        loss = distillation_loss(teacher[0], y_pred[0], self.temperature, self.from_logits)
        return loss + self.feature_weight * feature_loss(teacher[1:], y_pred[1:], self.feature_pooling)


def fine_tuning_schedule(learning_rate, steps, warmup=0.0):
    """A cosine decay from `learning_rate` to 0 over `steps` (see the module doc).

    `warmup` in `[0, 1)`: that fraction of the steps first rises linearly
    from 0 to `learning_rate`, the cosine then runs over the rest.
    """
    steps = max(int(steps), 1)
    ramp = int(warmup * steps)
    if not ramp:
        return keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    return keras.optimizers.schedules.CosineDecay(0.0, steps - ramp, warmup_target=learning_rate, warmup_steps=ramp)


def fine_tuning_optimizer(learning_rate, steps, warmup=0.0):
    """Adam on `fine_tuning_schedule(learning_rate, steps, warmup)`."""
    return keras.optimizers.Adam(fine_tuning_schedule(learning_rate, steps, warmup))


def _images_only(data, batch_size):
    """`data` as something `fit` takes without labels, and its batches per epoch (or None)."""
    if batch_size < 1:
        raise ValueError(f"Argument `batch_size` must be >= 1. Received: batch_size={batch_size}")
    if isinstance(data, np.ndarray):
        return data.astype("float32"), -(-len(data) // batch_size)
    try:
        import tensorflow as tf
    except ImportError:  # other backends: an iterable of batches
        tf = None
    if tf is not None and isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, tuple):
            data = data.map(lambda *batch: batch[0])
        steps = int(data.cardinality())
        return data, steps if steps > 0 else None
    batches = [np.asarray(b[0] if isinstance(b, (tuple, list)) else b, "float32") for b in data]
    if not batches:
        raise ValueError("Argument `data` is empty. Received: data with 0 batches")
    return np.concatenate(batches), len(batches)


def distill(
    converted, original, data, *, epochs=1, temperature=4.0, learning_rate=1e-4, batch_size=32,
    from_logits=True, verbose=0, freeze_batch_norm=False, feature_layers=(), feature_weight=0.0,
    teacher_shifts=1, warmup=0.0, feature_pooling="mean",
):
    """Trains `converted` to match the frozen `original`'s outputs on unlabelled `data`.

    Args:
        converted: the student (trained in place; e.g. `convert`'s output).
        original: the teacher; left unchanged.
        data: images: a numpy array, a `tf.data.Dataset` of image batches or
            of `(images, labels)` (labels ignored), or an iterable of batches.
        epochs: passes over `data`.
        temperature: the softening temperature `T` of `distillation_loss`.
        learning_rate: Adam's starting rate, decayed by a cosine to 0.
        batch_size: batch size for a numpy array (a dataset keeps its own).
        from_logits: False if both models end in a softmax.
        verbose: passed to `fit`.
        freeze_batch_norm: if True, the student's batch norms keep their
            statistics and weights (inference mode) during the run.
        feature_layers: layer names whose spatially averaged outputs are
            matched too, with weight `feature_weight` (see `Distiller`).
        feature_weight: the weight of that feature term.
        feature_pooling: `"mean"` or `"none"` (pixel by pixel; see `Distiller`).
        teacher_shifts: `n > 1`: the target is the teacher averaged over
            `n * n` circular shifts of each input (see `Distiller`).
        warmup: fraction of the steps (in `[0, 1)`) over which the rate
            first rises linearly from 0 (`fine_tuning_optimizer`).

    Returns:
        `(converted, history)`: the student, trained, and `fit`'s `History`.

    Example:
    >>> inputs = keras.Input((8, 8, 1))
    >>> x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    >>> teacher = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    >>> from keras_shiftinv import convert
    >>> student, _ = convert(teacher, "blur")
    >>> images = np.random.default_rng(0).normal(size=(32, 8, 8, 1)).astype("float32")
    >>> student, history = distill(student, teacher, images, epochs=2, learning_rate=1e-3)
    >>> student.name == teacher.name
    True
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Argument `{name}` must be an int >= 1. Received: {name}={value!r}")
    if not learning_rate > 0:
        raise ValueError(f"Argument `learning_rate` must be > 0. Received: learning_rate={learning_rate}")
    if not 0 <= warmup < 1:
        raise ValueError(f"Argument `warmup` must be in [0, 1). Received: warmup={warmup}")
    inputs, steps = _images_only(data, batch_size)
    trainable = original.trainable
    frozen = [bn for bn in _batch_norms(converted) if bn.trainable] if freeze_batch_norm else []
    distiller = Distiller(converted, original, temperature, from_logits, feature_layers, feature_weight,
                          teacher_shifts, feature_pooling)
    try:
        for bn in frozen:
            bn.trainable = False  # Keras 3: a non-trainable batch norm runs in inference mode
        distiller.compile(optimizer=fine_tuning_optimizer(learning_rate, (steps or 1) * epochs, warmup))
        fit_kwargs = {"batch_size": batch_size} if isinstance(inputs, np.ndarray) else {"shuffle": False}
        history = distiller.fit(inputs, epochs=epochs, verbose=verbose, **fit_kwargs)
    finally:
        original.trainable = trainable
        for bn in frozen:
            bn.trainable = True
    return converted, history
