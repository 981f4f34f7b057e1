"""Image transforms shared by the input pipelines (docs/design.md, "Training recipe", "Data")."""

import tensorflow as tf

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_size_for(image_size):
    """The eval resize for a crop size: 256 for 224, in the same ratio otherwise."""
    return int(round(image_size * 256 / 224))


def normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8-range RGB -> float32, (x/255 - mean) / std per channel."""
    image = tf.cast(image, tf.float32) / 255.0
    return (image - tf.constant(mean)) / tf.constant(std)


def decode_random_resized_crop(encoded, image_size, seed, area=(0.08, 1.0), aspect=(3 / 4, 4 / 3)):
    """Random-resized-crop fused with decoding.

    A JPEG is never decoded whole: its shape is read from the header and only
    the crop window is decoded. Other formats are decoded, then cropped.
    `seed` is a stateless seed, shape (2,). Returns float32
    `(image_size, image_size, 3)` in the 0..255 range.
    """

    def window(shape):
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            shape,
            bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=(1, 1, 4)),
            seed=seed,
            area_range=area,
            aspect_ratio_range=aspect,
            min_object_covered=0.0,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        return begin, size

    def jpeg():
        begin, size = window(tf.image.extract_jpeg_shape(encoded))
        crop = tf.stack([begin[0], begin[1], size[0], size[1]])
        return tf.io.decode_and_crop_jpeg(encoded, crop, channels=3)

    def other():
        image = _decode(encoded)
        begin, size = window(tf.shape(image))
        return tf.slice(image, begin, size)

    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    return tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)


def decode_center_crop(encoded, image_size, crop=True):
    """Resize the shorter side to `resize_size_for(image_size)`, center-crop.

    With `crop=False` the crop is `resize_size_for(image_size)` square: the
    uncropped images that the consistency metrics crop themselves.
    """
    return center_crop(_decode(encoded), image_size, crop)


def center_crop(image, image_size, crop=True):
    """The evaluation resize and center crop of a decoded `(H, W, 3)` image.

    The part of `decode_center_crop` after decoding; the exported serving
    signatures (`keras_shiftinv.export`) apply it to client images. Returns
    float32 in the 0..255 range.
    """
    resize = resize_size_for(image_size)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize / tf.reduce_min(shape)
    new = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, new, method="bilinear", antialias=True)
    side = image_size if crop else resize
    top = (new[0] - side) // 2
    left = (new[1] - side) // 2
    return tf.slice(image, [top, left, 0], [side, side, 3])


def _decode(encoded):
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def preprocess(encoded, image_size, seed, training, crop=True):
    """The ImageNet recipe for one encoded image, normalised.

    Training: random-resized-crop + horizontal flip (stateless, from `seed`);
    evaluation: `decode_center_crop`.
    """
    if training:
        image = decode_random_resized_crop(encoded, image_size, seed)
        image = tf.image.stateless_random_flip_left_right(image, seed + 1)
    else:
        image = decode_center_crop(encoded, image_size, crop=crop)
    return normalize(image)
