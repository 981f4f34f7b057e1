"""Input pipelines: ImageNet (tfds), image folders, Fashion-MNIST."""

from keras_shiftinv.data.fashion_mnist import NUM_CLASSES as FASHION_MNIST_CLASSES
from keras_shiftinv.data.fashion_mnist import fashion_mnist
from keras_shiftinv.data.fashion_mnist import fashion_mnist_num_examples
from keras_shiftinv.data.image_folder import image_folder
from keras_shiftinv.data.image_folder import list_image_folder
from keras_shiftinv.data.imagenet import NUM_CLASSES as IMAGENET_CLASSES
from keras_shiftinv.data.imagenet import imagenet2012
from keras_shiftinv.data.imagenet import prepare_imagenet2012
from keras_shiftinv.data.transforms import normalize

__all__ = [
    "FASHION_MNIST_CLASSES",
    "IMAGENET_CLASSES",
    "fashion_mnist",
    "fashion_mnist_num_examples",
    "image_folder",
    "imagenet2012",
    "list_image_folder",
    "normalize",
    "prepare_imagenet2012",
]
