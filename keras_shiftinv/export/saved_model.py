"""A TF Serving SavedModel that takes encoded images and returns class names."""

import keras
import tensorflow as tf

from keras_shiftinv.data.transforms import MAX_PIXELS
from keras_shiftinv.data.transforms import decode_bounded
from keras_shiftinv.data.transforms import header_size
from keras_shiftinv.data.transforms import size_problem
from keras_shiftinv.export.preprocessing import image_transform
from keras_shiftinv.export.preprocessing import needed_side
from keras_shiftinv.export.publish import publish
from keras_shiftinv.export.spec import ServingSpec
from keras_shiftinv.layers.polyphase_downsample import folded_kernels


def classify(model, spec):
    """`fn(images) -> (outputs, logits)` on preprocessed float images.

    `outputs` holds `probabilities` `(B, K)`, `classes` `(B, k)` int32 (top-k,
    k = min(5, K), highest first, ties to the lower index) and `class_names`
    `(B, k)` string.
    """

    def fn(images):
        raw = tf.cast(model(images, training=False), tf.float32)
        if spec.from_logits:
            logits, probabilities = raw, tf.nn.softmax(raw, axis=-1)
        else:
            probabilities, logits = raw, tf.math.log(tf.maximum(raw, 1e-12))
        top = tf.math.top_k(probabilities, k=spec.top_k)
        classes = tf.cast(top.indices, tf.int32)
        outputs = {"probabilities": probabilities, "classes": classes,
                   "class_names": tf.gather(tf.constant(spec.class_names), classes)}
        return outputs, logits

    return fn


def decode_batch(image_bytes, transform, image_size, need, max_pixels=MAX_PIXELS):
    """Encoded images `[N]` -> preprocessed float32 `(N, S, S, 3)`.

    Each image's size is read from its header first; one above `max_pixels`
    or of an unknown format is not decoded at all. The others are decoded
    (`data.transforms.decode_bounded`, thinned for a short side of `need`) and
    transformed in a `tf.data` pipeline that drops the ones that fail. If any
    image was refused or failed, the call fails with one message naming the
    first such index (`image_bytes[i] is too large: WxH pixels ...` or
    `image_bytes[i] is not a decodable ...`); the server keeps running.
    """
    n = tf.shape(image_bytes)[0]
    blank = tf.zeros([image_size, image_size, 3], tf.float32)

    def load(index, encoded):
        size = header_size(encoded)
        problem = size_problem(size, max_pixels)
        image = tf.cond(tf.equal(problem, 0), lambda: transform(decode_bounded(encoded, need, max_pixels)),
                        lambda: blank)
        return index, problem, size, image

    ds = tf.data.Dataset.from_tensor_slices((tf.range(n), image_bytes))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    empty = tf.data.Dataset.from_tensors((tf.zeros([0], tf.int32), tf.zeros([0], tf.int32),
                                          tf.zeros([0, 2], tf.int64), tf.zeros([0, image_size, image_size, 3])))
    batch = ds.batch(tf.cast(tf.maximum(n, 1), tf.int64)).concatenate(empty).take(1).get_single_element()
    indices, problems, sizes, images = batch
    # Per index: 0 decoded, 1 unknown format, 2 too large, 3 failed to decode (dropped by ignore_errors).
    status = tf.tensor_scatter_nd_update(tf.fill([n], 3), indices[:, None], problems)
    size = tf.tensor_scatter_nd_update(tf.zeros([n, 2], tf.int64), indices[:, None], sizes)
    first_bad = tf.argmax(tf.concat([tf.cast(status != 0, tf.int32), [1]], 0), output_type=tf.int32)
    bad_size = tf.gather(tf.concat([size, [[0, 0]]], 0), first_bad)
    too_large = tf.strings.format(
        "image_bytes[{}] is too large: {}x{} pixels (width x height), above the limit of " + f"{max_pixels} pixels",
        (first_bad, bad_size[1], bad_size[0]))
    undecodable = tf.strings.format("image_bytes[{}] is not a decodable JPEG, PNG, GIF or BMP image", first_bad)
    message = tf.where(tf.equal(tf.gather(tf.concat([status, [0]], 0), first_bad), 2), too_large, undecodable)
    check = tf.debugging.Assert(tf.reduce_all(tf.equal(status, 0)), [message])
    with tf.control_dependencies([check]):
        return tf.identity(images)


def add_serving_endpoints(archive, model, spec):
    """Adds `serving_default`, `serve_uint8` and `serve_float` to an `ExportArchive`."""
    side = spec.image_size
    # One traced function of the model, called by all three endpoints (one trace, not three).
    run = tf.function(classify(model, spec), input_signature=[tf.TensorSpec([None, side, side, 3], tf.float32)])
    transform = image_transform(spec.preprocessing, side)
    pixels = tf.TensorSpec((side, side, 3), tf.float32)

    need = needed_side(spec.preprocessing, side)

    def serve_bytes(image_bytes):
        return run(decode_batch(image_bytes, transform, side, need, spec.max_pixels))[0]

    def serve_uint8(images):
        return run(tf.map_fn(transform, images, fn_output_signature=pixels))[0]

    def serve_float(image):
        outputs, logits = run(image)
        return {**outputs, "logits": logits}

    archive.add_endpoint("serving_default", serve_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("serve_uint8", serve_uint8, [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    archive.add_endpoint("serve_float", serve_float, [tf.TensorSpec([None, side, side, 3], tf.float32, name="image")])


def export_saved_model(model, export_dir, version=1, *, class_names=None, preprocessing=None, image_size=None,
                       from_logits=True, overwrite=False, metadata=None, max_pixels=MAX_PIXELS):
    """Writes `model` as a TF Serving SavedModel into `<export_dir>/<version>/`.

    Signatures (docs/design.md, "Export and serving"):
    - `serving_default`: `image_bytes` (string `[None]`, each a JPEG, PNG,
      GIF or BMP of at most `max_pixels`, grey, RGB or RGBA; WebP and other
      formats are refused) -> `probabilities`
      (float32 `[None, K]`), `classes` (int32 `[None, k]`, top-k, k =
      min(5, K)) and `class_names` (string `[None, k]`).
    - `serve_uint8`: `images` (uint8 `[None, None, None, 3]`, any size) ->
      the same outputs.
    - `serve_float`: `image` (float32 `[None, S, S, 3]`, already
      preprocessed) -> the same outputs plus `logits`.
    The first two apply the evaluation transform of the model's training data
    in the graph. Each polyphase module's kernel is folded once, at export,
    into constants (`layers.folded_kernels`): no kernel composition per call,
    and the export keeps the weights of that moment (re-export after further
    training). The folder is written beside the target and renamed into
    place, readable by every user; no function needs XLA.

    Args:
        model: a built `keras.Model` with one RGB image input.
        export_dir: the model's base path, as given to TF Serving.
        version: positive int, the version subfolder.
        class_names: names of the K classes; default: the metadata's, else
            `"0".."K-1"`.
        preprocessing: `"imagenet"`, `"fashion_mnist"` or
            `"fashion_mnist_photo"`; default: the metadata's dataset's, else
            `"imagenet"` (ImageNet and image folders).
        image_size: the model's input side; default: the metadata's, else
            the model's static input side.
        from_logits: True if the model outputs logits (as `resnet18` does).
        overwrite: replace an existing version (the old one stays in place
            until the new one is complete).
        metadata: the dict `saving.read_metadata` returned for the model's
            `.keras` file (`class_names`, `dataset`, `image_size`), if any.
        max_pixels: `serving_default` refuses an image whose header says
            it has more pixels (width x height) than this, before decoding
            it; default 40 million (`data.transforms.MAX_PIXELS`).

    Returns:
        The path of the written version folder.

    Example:
    >>> model = keras_shiftinv.resnet18("stride", num_classes=2, input_shape=(32, 32, 3), width=0.125)
    >>> path = export_saved_model(model, os.path.join(tmp_dir, "m"), class_names=["cat", "dog"])
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> png = tf.io.encode_png(np.zeros((50, 40, 3), "uint8"))
    >>> serve(image_bytes=tf.stack([png]))["class_names"].shape
    TensorShape([1, 2])
    """
    spec = ServingSpec.for_model(model, metadata, class_names=class_names, preprocessing=preprocessing,
                                 image_size=image_size, from_logits=from_logits, max_pixels=max_pixels)

    def write(tmp_dir):
        archive = keras.export.ExportArchive()
        archive.track(model)
        # Each polyphase module's fused kernel folded once, now, into constants (no composition per
        # call); the factored path where the cost rule still prefers it (`group` at large maps).
        with folded_kernels(model):
            add_serving_endpoints(archive, model, spec)
            archive.write_out(tmp_dir, verbose=False)

    return publish(export_dir, version, write, overwrite)
