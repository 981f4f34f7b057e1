"""An ONNX model of the model on preprocessed float images, via tf2onnx."""

import json
import os

from keras_shiftinv.export.litert import float_endpoint
from keras_shiftinv.export.publish import publish
from keras_shiftinv.export.spec import ServingSpec
from keras_shiftinv.layers.polyphase_downsample import folded_kernels

FILENAME = "model.onnx"
OPSET = 17
OUTPUTS = ("probabilities", "logits")


def export_onnx(model, export_dir, version=1, *, class_names=None, preprocessing=None, image_size=None,
                from_logits=True, overwrite=False, metadata=None):
    """Writes `<export_dir>/<version>/model.onnx`, run by `onnxruntime`.

    Input `image` (float32 `[N, S, S, 3]`, dynamic N, preprocessed as in
    evaluation: ONNX has no image decoders), outputs `probabilities` and
    `logits`. The model's metadata properties hold `class_names` (JSON),
    `preprocessing` and `image_size`. Converted by `tf2onnx` at opset 17;
    written atomically, readable by every user.

    Args:
        model: a built `keras.Model` with one RGB image input.
        export_dir, version, overwrite: as in `export_saved_model`.
        class_names, preprocessing, image_size, from_logits, metadata: as in
            `export_saved_model`.

    Returns:
        The path of the `.onnx` file.
    """
    import onnx
    import tf2onnx
    import tensorflow as tf

    spec = ServingSpec.for_model(model, metadata, class_names=class_names, preprocessing=preprocessing,
                                 image_size=image_size, from_logits=from_logits)
    fn, signature = float_endpoint(model, spec)
    function = tf.function(fn, input_signature=signature)

    def write(tmp_dir):
        with folded_kernels(model):  # constants, one static path each: no per-call composition, no `If`
            proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
        name_outputs(proto, function.get_concrete_function())
        properties = {"class_names": json.dumps(list(spec.class_names)), "preprocessing": spec.preprocessing,
                      "image_size": str(spec.image_size)}
        onnx.helper.set_model_props(proto, properties)
        onnx.save(proto, os.path.join(tmp_dir, FILENAME))

    return os.path.join(publish(export_dir, version, write, overwrite), FILENAME)


def name_outputs(proto, concrete):
    """Renames the graph outputs after the function's output dict keys."""
    flat = concrete.structured_outputs
    by_tensor = {concrete.outputs[i].name: key for i, key in enumerate(sorted(flat))}
    for output in proto.graph.output:
        new = by_tensor.get(output.name)
        if new is None:
            continue
        for node in proto.graph.node:
            node.output[:] = [new if o == output.name else o for o in node.output]
            node.input[:] = [new if i == output.name else i for i in node.input]
        output.name = new
