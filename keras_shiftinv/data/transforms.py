"""Image transforms shared by the input pipelines (docs/design.md, "Training recipe", "Data")."""

import tensorflow as tf

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The largest image decoded (docs/design.md, "Export and serving"): 40 megapixels is above every
# camera in common use (24-36 MP) and costs 120 MB as uint8 RGB; a bigger image is refused from its
# header, before anything is decoded.
MAX_PIXELS = 40_000_000
# An image more than this many times the size the model needs is first thinned in uint8 (a JPEG is
# decoded at 1/2, 1/4 or 1/8 scale), so no full-resolution float image is ever made.
OVERSAMPLE = 4


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
        image = decode_image(encoded)
        begin, size = window(tf.shape(image))
        return tf.slice(image, begin, size)

    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    return tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)


def decode_center_crop(encoded, image_size, crop=True, max_pixels=MAX_PIXELS):
    """Resize the shorter side to `resize_size_for(image_size)`, center-crop.

    With `crop=False` the crop is `resize_size_for(image_size)` square: the
    uncropped images that the consistency metrics crop themselves. An image
    above `max_pixels` fails (`decode_bounded`).
    """
    return center_crop(decode_bounded(encoded, resize_size_for(image_size), max_pixels), image_size, crop)


def center_crop(image, image_size, crop=True):
    """The evaluation resize and center crop of a decoded `(H, W, 3)` image.

    The part of `decode_center_crop` after decoding; the exported serving
    signatures (`keras_shiftinv.export`) apply it to client images. Returns
    float32 in the 0..255 range.
    """
    resize = resize_size_for(image_size)
    image = thin(image, resize)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize / tf.reduce_min(shape)
    new = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, new, method="bilinear", antialias=True)
    side = image_size if crop else resize
    top = (new[0] - side) // 2
    left = (new[1] - side) // 2
    return tf.slice(image, [top, left, 0], [side, side, 3])


def _bytes(head, start, count):
    return [head[start + i] for i in range(count)]


def _big_endian(values):
    out = tf.constant(0, tf.int64)
    for value in values:
        out = out * 256 + value
    return out


def _little_endian(values):
    return _big_endian(values[::-1])


def header_size(encoded):
    """`(height, width)` int64 of a JPEG, PNG, GIF or BMP from its header alone.

    `(-1, -1)` for anything else (WebP included) or a header too short to
    hold the size. A JPEG whose header cannot be parsed fails the op.

    Example:
    >>> png = tf.io.encode_png(np.zeros((30000, 1, 1), "uint8"))
    >>> header_size(png).numpy()
    array([30000,     1])
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    padded = tf.strings.substr(encoded + b"\0" * 32, 0, 32)  # every substr below is in range
    b = tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)  # (32,)
    is_png = tf.logical_and(tf.equal(tf.strings.substr(padded, 0, 8), b"\x89PNG\r\n\x1a\n"),
                            tf.equal(tf.strings.substr(padded, 12, 4), b"IHDR"))
    is_gif = tf.equal(tf.strings.substr(padded, 0, 4), b"GIF8")
    is_bmp = tf.equal(tf.strings.substr(padded, 0, 2), b"BM")
    png = tf.stack([_big_endian(_bytes(b, 20, 4)), _big_endian(_bytes(b, 16, 4))])
    gif = tf.stack([_little_endian(_bytes(b, 8, 2)), _little_endian(_bytes(b, 6, 2))])
    # BMP: BITMAPCOREHEADER (12 bytes) has 16-bit sides, the later ones signed 32-bit (height < 0: top-down).
    core = tf.equal(_little_endian(_bytes(b, 14, 4)), 12)
    width32 = _little_endian(_bytes(b, 18, 4))
    height32 = _little_endian(_bytes(b, 22, 4))
    signed = lambda v: tf.where(v >= 2**31, v - 2**32, v)  # noqa: E731
    bmp = tf.where(core, tf.stack([_little_endian(_bytes(b, 20, 2)), _little_endian(_bytes(b, 18, 2))]),
                   tf.stack([tf.abs(signed(height32)), signed(width32)]))
    unknown = tf.constant([-1, -1], tf.int64)
    long_enough = tf.strings.length(encoded) >= 26
    size = tf.where(tf.logical_and(is_png, long_enough), png,
                    tf.where(tf.logical_and(is_gif, long_enough), gif,
                             tf.where(tf.logical_and(is_bmp, long_enough), bmp, unknown)))
    return tf.cond(tf.io.is_jpeg(encoded), lambda: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64),
                   lambda: size)


def size_problem(size, max_pixels=MAX_PIXELS):
    """0 if `header_size` `size` may be decoded, 1 for an unknown format, 2 if above `max_pixels`."""
    known = tf.reduce_all(size > 0)
    return tf.where(known, tf.where(size[0] * size[1] > max_pixels, 2, 0), 1)


def size_message(size, max_pixels=MAX_PIXELS):
    """The reason an image of `header_size` `size` is refused, as a string tensor."""
    return tf.strings.format("is too large: {}x{} pixels (width x height), above the limit of " +
                             f"{max_pixels} pixels", (size[1], size[0]))


def thin(image, need):
    """Every k-th row and column of a uint8 image whose short side is >= `OVERSAMPLE` * k * `need`.

    Keeps at least `OVERSAMPLE * need` pixels on the short side, so the
    antialiased resize that follows still averages several pixels into one;
    images below `OVERSAMPLE * need` are returned as they are.
    """
    shape = tf.shape(image)
    k = tf.maximum(1, tf.reduce_min(shape[:2]) // (OVERSAMPLE * need))
    thinned = tf.strided_slice(image, [0, 0, 0], shape, tf.stack([k, k, 1]))
    thinned.set_shape([None, None, image.shape[-1]])
    return thinned


def decode_bounded(encoded, need, max_pixels=MAX_PIXELS):
    """Decodes one RGB image of at most `max_pixels`, thinned for a short side of `need`.

    The size is read from the header (`header_size`) first: an unknown format
    or an image above `max_pixels` fails before anything is decoded, with a
    message naming the size. A JPEG whose short side is at least
    `OVERSAMPLE * r * need` is decoded at scale 1/r (r = 2, 4 or 8, libjpeg's
    DCT scaling); other formats are decoded, then `thin`ned in uint8.

    Returns:
        uint8 `(H, W, 3)`.
    """
    size = header_size(encoded)
    problem = size_problem(size, max_pixels)
    check = tf.debugging.Assert(tf.equal(problem, 0), [tf.where(
        tf.equal(problem, 1), tf.constant("is not a JPEG, PNG, GIF or BMP image"), size_message(size, max_pixels))])
    with tf.control_dependencies([check]):
        short = tf.reduce_min(size)
    scale = tf.cast(short >= OVERSAMPLE * need * 2, tf.int32) + tf.cast(short >= OVERSAMPLE * need * 4, tf.int32) \
        + tf.cast(short >= OVERSAMPLE * need * 8, tf.int32)  # 0..3 -> 1/1 .. 1/8
    jpeg = [lambda r=r: tf.io.decode_jpeg(encoded, channels=3, ratio=r) for r in (1, 2, 4, 8)]
    image = tf.cond(tf.io.is_jpeg(encoded), lambda: tf.switch_case(scale, jpeg), lambda: decode_image(encoded))
    image.set_shape([None, None, 3])
    return thin(image, need)


def decode_image(encoded):
    """Decodes any image `tf.io.decode_image` reads to uint8 RGB `(H, W, 3)`, first frame of a GIF."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def preprocess(encoded, image_size, seed, training, crop=True):
    """The ImageNet recipe for one encoded image, normalised.

    Training: random-resized-crop + horizontal flip (stateless, from `seed`);
    evaluation: `decode_bounded`, then `eval_transform`.
    """
    if training:
        image = decode_random_resized_crop(encoded, image_size, seed)
        image = tf.image.stateless_random_flip_left_right(image, seed + 1)
        return normalize(image)
    return eval_transform(decode_bounded(encoded, resize_size_for(image_size)), image_size, crop)


def eval_transform(image, image_size, crop=True):
    """The ImageNet evaluation transform of one decoded `(H, W, 3)` image in 0..255.

    Shorter side to `resize_size_for(image_size)`, center crop (`center_crop`),
    ImageNet mean/std (`normalize`). The input pipelines (`preprocess`) and the
    exported serving graph both apply it. Returns float32.
    """
    return normalize(center_crop(image, image_size, crop))


def resize_square(image, side):
    """A float `(H, W, C)` image resized (antialiased) to `(side, side, C)`; unchanged if it is that size."""
    same = tf.reduce_all(tf.shape(image)[:2] == side)
    return tf.cond(same, lambda: image, lambda: tf.image.resize(image, (side, side), antialias=True))
