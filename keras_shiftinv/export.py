"""Export to a TF SavedModel for TF Serving."""

import os
import shutil
import tempfile

import keras
import tensorflow as tf


def export_saved_model(model, export_dir, version=1, from_logits=True, overwrite=False):
    """Writes `model` as a TF Serving SavedModel into `<export_dir>/<version>/`.

    The SavedModel has one signature, `serving_default`, with input `image`
    (float32, `[None, H, W, C]`, preprocessed as in training) and outputs
    `probabilities` (softmax) and `logits`. The export is atomic: it is written
    to a temporary folder beside the target and renamed into place, so a failed
    export leaves nothing at `<export_dir>/<version>`.

    Args:
        model: a built `keras.Model` with one image input.
        export_dir: the model's base path, as given to TF Serving.
        version: positive int, the version subfolder.
        from_logits: True if the model outputs logits (as `resnet18` does by
            default); False if it outputs probabilities already.
        overwrite: replace an existing version folder.

    Returns:
        The path of the written version folder.

    Example:
    >>> path = export_saved_model(model, "/models/resnet18", version=3)
    >>> tf.saved_model.load(path).signatures["serving_default"](image=batch)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive integer. Received: version={version!r}")
    input_shape = tuple(model.inputs[0].shape) if model.inputs else None
    if input_shape is None or len(input_shape) != 4:
        raise ValueError(
            "`model` must have one 4D image input (batch, height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    target = os.path.join(os.fspath(export_dir), str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"{target} already exists. Pass overwrite=True or a new version. "
            f"Received: version={version}"
        )
    os.makedirs(export_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)

        def serve(image):
            outputs = model(image, training=False)
            if from_logits:
                logits = outputs
                probabilities = tf.nn.softmax(logits, axis=-1)
            else:
                probabilities = outputs
                logits = tf.math.log(tf.maximum(probabilities, 1e-12))
            return {
                "probabilities": tf.cast(probabilities, tf.float32),
                "logits": tf.cast(logits, tf.float32),
            }

        spec = tf.TensorSpec((None,) + input_shape[1:], tf.float32, name="image")
        archive.add_endpoint(name="serving_default", fn=serve, input_signature=[spec])
        archive.write_out(tmp_dir, verbose=False)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(tmp_dir, target)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return target
