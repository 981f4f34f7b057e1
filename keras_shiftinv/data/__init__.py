"""Input pipelines: ImageNet (tfds), image folders, Fashion-MNIST, behind `load`; one `DatasetSpec` per name."""

from keras_shiftinv._backend import require_tensorflow

require_tensorflow("keras_shiftinv.data (tf.data and tfds input pipelines)")

from keras_shiftinv.data.fashion_mnist import NUM_CLASSES as FASHION_MNIST_CLASSES
from keras_shiftinv.data.fashion_mnist import fashion_mnist
from keras_shiftinv.data.fashion_mnist import fashion_mnist_num_examples
from keras_shiftinv.data.image_folder import find_unreadable
from keras_shiftinv.data.image_folder import image_folder
from keras_shiftinv.data.image_folder import list_image_folder
from keras_shiftinv.data.image_folder import scan_image_folder
from keras_shiftinv.data.imagenet import NUM_CLASSES as IMAGENET_CLASSES
from keras_shiftinv.data.info import DatasetInfo
from keras_shiftinv.data.loader import describe
from keras_shiftinv.data.loader import has_split
from keras_shiftinv.data.loader import load
from keras_shiftinv.data.imagenet import imagenet2012
from keras_shiftinv.data.imagenet import prepare_imagenet2012
from keras_shiftinv.data.registry import DATASETS
from keras_shiftinv.data.registry import DEFAULT_DATASET
from keras_shiftinv.data.registry import DEFAULT_IMAGE_SIZE
from keras_shiftinv.data.registry import EVAL_TRANSFORMS
from keras_shiftinv.data.registry import IMAGENET_EVAL
from keras_shiftinv.data.registry import PAPER_DATASET
from keras_shiftinv.data.registry import SPECS
from keras_shiftinv.data.registry import DatasetSpec
from keras_shiftinv.data.registry import EvalTransform
from keras_shiftinv.data.registry import spec
from keras_shiftinv.data.scenes import SCENE_CLASS_NAMES
from keras_shiftinv.data.scenes import SCENES_DATASET
from keras_shiftinv.data.scenes import fashion_mnist_scenes
from keras_shiftinv.data.transforms import normalize

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "DEFAULT_IMAGE_SIZE",
    "EVAL_TRANSFORMS",
    "IMAGENET_EVAL",
    "PAPER_DATASET",
    "SPECS",
    "DatasetInfo",
    "DatasetSpec",
    "EvalTransform",
    "spec",
    "describe",
    "has_split",
    "load",
    "FASHION_MNIST_CLASSES",
    "IMAGENET_CLASSES",
    "SCENE_CLASS_NAMES",
    "SCENES_DATASET",
    "fashion_mnist",
    "fashion_mnist_scenes",
    "fashion_mnist_num_examples",
    "find_unreadable",
    "image_folder",
    "imagenet2012",
    "list_image_folder",
    "normalize",
    "prepare_imagenet2012",
    "scan_image_folder",
]
