"""A LiteRT (TFLite) flatbuffer of the model on preprocessed float images."""

import os
import shutil

import keras
import tensorflow as tf

from keras_shiftinv.export.publish import publish
from keras_shiftinv.layers.polyphase_downsample import folded_kernels
from keras_shiftinv.export.saved_model import classify
from keras_shiftinv.export.spec import ServingSpec
from keras_shiftinv.saving import write_json

FILENAME = "model.tflite"
LABELS = "labels.txt"  # one class name per line, index = line number
SPEC = "serving.json"  # class names, preprocessing, image size, signature
SIGNATURE = "serve_float"


def float_endpoint(model, spec):
    """`(fn, input_signature)`: preprocessed `image` -> `probabilities`, `logits`."""
    run = classify(model, spec)

    def fn(image):
        outputs, logits = run(image)
        return {"probabilities": outputs["probabilities"], "logits": logits}

    side = spec.image_size
    return fn, [tf.TensorSpec([None, side, side, 3], tf.float32, name="image")]


def export_litert(model, export_dir, version=1, *, class_names=None, preprocessing=None, image_size=None,
                  from_logits=True, overwrite=False, metadata=None):
    """Writes `<export_dir>/<version>/model.tflite`, run by `ai_edge_litert`.

    One signature, `serve_float`: `image` (float32 `[None, S, S, 3]`,
    preprocessed as in evaluation: LiteRT has no image decoders) ->
    `probabilities` and `logits`. Converted by TF's converter from a
    SavedModel (which freezes the weights), LiteRT builtin ops only: no
    Select-TF ops, no XLA. Beside it, `labels.txt` (one class name per line)
    and `serving.json` (`class_names`, `preprocessing`, `image_size`,
    `signature`). Written atomically, readable by every user.

    Args:
        model: a built `keras.Model` with one RGB image input.
        export_dir, version, overwrite: as in `export_saved_model`.
        class_names, preprocessing, image_size, from_logits, metadata: as in
            `export_saved_model`.

    Returns:
        The path of the `.tflite` file.
    """
    spec = ServingSpec.for_model(model, metadata, class_names=class_names, preprocessing=preprocessing,
                                 image_size=image_size, from_logits=from_logits)
    if any("\n" in name or "\r" in name for name in spec.class_names):
        raise ValueError(f"Class names for {LABELS} must be single lines. Received: class_names={list(spec.class_names)}")
    fn, signature = float_endpoint(model, spec)

    def write(tmp_dir):
        saved = os.path.join(tmp_dir, "saved_model")
        archive = keras.export.ExportArchive()
        archive.track(model)
        with folded_kernels(model):  # constants: the converter does not fold the composition
            archive.add_endpoint(SIGNATURE, fn, signature)
            archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
        shutil.rmtree(saved)
        with open(os.path.join(tmp_dir, FILENAME), "wb") as f:
            f.write(flatbuffer)
        with open(os.path.join(tmp_dir, LABELS), "w", encoding="utf-8") as f:
            f.write("".join(f"{name}\n" for name in spec.class_names))
        write_json(os.path.join(tmp_dir, SPEC), {"class_names": list(spec.class_names),
                                                 "preprocessing": spec.preprocessing,
                                                 "image_size": spec.image_size, "signature": SIGNATURE})

    return os.path.join(publish(export_dir, version, write, overwrite), FILENAME)
