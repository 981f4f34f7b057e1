from setuptools import find_packages
from setuptools import setup

# TensorFlow and the packages only its parts use (tf.data pipelines, training, export, reports).
TF = [
    "tensorflow>=2.16.1,<2.22",
    "tensorflow-datasets>=4.9.4,<4.10",
    "importlib_resources",  # tfds needs it to prepare imagenet2012 but does not declare it
    "matplotlib>=3.7",
    "tensorboard>=2.16.2",  # 2.16.0 wrongly requires tf-keras-nightly
    "pillow>=9.0",
]

setup(
    name="keras-shiftinv",
    version="0.1.0",
    description="Shift-robust downsampling layers and ResNet-18 for Keras 3 (TensorFlow, JAX)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["keras_shiftinv", "keras_shiftinv.*"]),
    python_requires=">=3.10",
    # The backend-neutral core (layers, methods, models, conversion, metrics, saving) needs only
    # Keras, numpy and one backend: `.[tf]` (the design's main path, and everything else: data
    # pipelines, training, export, the CLI), `.[jax]` or `.[torch]`. `.[test]` includes `.[tf]`.
    install_requires=[
        "keras>=3.14,<3.16",  # keras.ops.space_to_depth is new in 3.14
        "numpy>=1.26",
        "tqdm>=4.60",
    ],
    extras_require={
        "tf": TF,
        # tested with jax/jaxlib 0.10.2 (CPU) and keras 3.15.1 in a venv without tensorflow
        "jax": ["jax[cpu]>=0.10.2,<0.11"],
        # not tested here: PyPI's default torch wheel pulls several GB of CUDA packages (docs/backends.md)
        "torch": ["torch>=2.5"],
        # fashion_mnist_photo reads the photographs bundled in scikit-image's wheel (no download)
        "photo": TF + ["scikit-image>=0.22"],
        # MNIST-1D for the 1-D example (`experiments.signal1d`): its generator builds the data locally
        "signal": TF + ["mnist1d>=0.0.2,<0.1"],
        # `convert` of keras-hub and keras-cv backbones (tested; never core dependencies)
        "hub": ["keras-hub>=0.32"],
        "cv": ["keras-cv==0.9.0"],
        # `shiftinv export --format litert|onnx` and their runtimes (pip --dry-run with TF 2.21: no
        # change to tensorflow, keras, numpy, protobuf, ml-dtypes or h5py)
        "litert": TF + ["ai-edge-litert>=2.3,<2.4"],
        "onnx": TF + ["tf2onnx>=1.17,<1.18", "onnx>=1.23", "onnxruntime>=1.31"],
        "test": TF + ["jax[cpu]>=0.10.2,<0.11", "pytest>=7", "nbclient>=0.9", "nbformat>=5.9", "ipykernel>=6", "scikit-image>=0.22",
                 "keras-hub>=0.32", "keras-cv==0.9.0", "mnist1d>=0.0.2,<0.1",
                 "ai-edge-litert>=2.3,<2.4", "tf2onnx>=1.17,<1.18", "onnx>=1.23", "onnxruntime>=1.31"],
    },
    entry_points={"console_scripts": ["shiftinv=keras_shiftinv.cli:main"]},
)
