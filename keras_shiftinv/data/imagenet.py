"""ImageNet (ILSVRC 2012) through the tfds `imagenet2012` builder (docs/design.md, "Data")."""

import os

from keras_shiftinv.data.info import DatasetInfo
from keras_shiftinv.data.info import package_split
from keras_shiftinv.data.pipeline import finish
from keras_shiftinv.data.transforms import preprocess
from keras_shiftinv.data.transforms import resize_size_for
from keras_shiftinv.errors import DataError

MANUAL_FILES = {"train": "ILSVRC2012_img_train.tar", "validation": "ILSVRC2012_img_val.tar"}
NUM_CLASSES = 1000


def prepare_imagenet2012(data_dir=None, manual_dir=None):
    """Returns the prepared tfds builder, preparing it from the manual tars once.

    Nothing is downloaded: `manual_dir` must hold `ILSVRC2012_img_train.tar`
    and/or `ILSVRC2012_img_val.tar` as distributed by image-net.org.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if builder.is_prepared():
        return builder
    manual_dir = manual_dir or os.path.join(builder.data_dir_root, "downloads", "manual")
    found = [f for f in MANUAL_FILES.values() if os.path.exists(os.path.join(manual_dir, f))]
    if not found:
        raise DataError(
            f"imagenet2012 is not prepared and {manual_dir} holds neither "
            f"{' nor '.join(MANUAL_FILES.values())}. Put the ILSVRC 2012 tars there "
            "(or pass --manual-dir)."
        )
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=config)
    return builder


def imagenet2012(
    split="train",
    batch_size=128,
    image_size=224,
    training=None,
    crop=True,
    seed=0,
    max_examples=None,
    data_dir=None,
    manual_dir=None,
    input_context=None,
):
    """Batched ImageNet with the paper's transforms.

    Training: random-resized-crop (area 0.08-1, aspect 3/4-4/3) fused with
    JPEG decoding, horizontal flip, file shuffling. Evaluation: shorter side
    to 256, center crop 224 (or, `crop=False`, the 256x256 square). Mean/std
    normalisation. `input_context` shards files per host.

    Returns:
        `(dataset, info)`: batches of `(images float32 (B, s, s, 3), labels)`
        and their `DatasetInfo`.
    """
    import tensorflow_datasets as tfds

    training = split.startswith("train") if training is None else training
    builder = prepare_imagenet2012(data_dir, manual_dir)
    if split.split("[")[0] not in builder.info.splits:
        raise DataError(f"imagenet2012 has splits {sorted(builder.info.splits)}. Received: split={split!r}")
    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=seed)
    ds = builder.as_dataset(
        split=split,
        shuffle_files=training,
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=read_config,
    )
    ds = ds.map(lambda ex: (ex["image"], ex["label"]))

    def transform(encoded, seed_pair):
        return preprocess(encoded, image_size, seed_pair, training, crop)

    n = builder.info.splits[split].num_examples
    n = n if max_examples is None else min(n, max_examples)
    info = DatasetInfo("imagenet2012", package_split(split), tuple(builder.info.features["label"].names), n,
                       image_size, resize_size_for(image_size))
    return finish(ds, transform, batch_size, training, seed, max_examples), info
