from setuptools import find_packages
from setuptools import setup

setup(
    name="keras-shiftinv",
    version="0.1.0",
    description="Shift-robust downsampling layers and ResNet-18 for Keras 3 / TensorFlow",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["keras_shiftinv", "keras_shiftinv.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16.1,<2.22",
        "keras>=3.14,<3.16",  # keras.ops.space_to_depth is new in 3.14
        "tensorflow-datasets>=4.9.4,<4.10",
        "importlib_resources",  # tfds needs it to prepare imagenet2012 but does not declare it
        "numpy>=1.26",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "tensorboard>=2.16.2",  # 2.16.0 wrongly requires tf-keras-nightly
        "pillow>=9.0",
    ],
    extras_require={
        # fashion_mnist_photo reads the photographs bundled in scikit-image's wheel (no download)
        "photo": ["scikit-image>=0.22"],
        # `convert` of keras-hub and keras-cv backbones (tested; never core dependencies)
        "hub": ["keras-hub>=0.32"],
        "cv": ["keras-cv==0.9.0"],
        # `shiftinv export --format litert|onnx` and their runtimes (pip --dry-run with TF 2.21: no
        # change to tensorflow, keras, numpy, protobuf, ml-dtypes or h5py)
        "litert": ["ai-edge-litert>=2.3,<2.4"],
        "onnx": ["tf2onnx>=1.17,<1.18", "onnx>=1.23", "onnxruntime>=1.31"],
        "test": ["pytest>=7", "nbclient>=0.9", "nbformat>=5.9", "ipykernel>=6", "scikit-image>=0.22",
                 "keras-hub>=0.32", "keras-cv==0.9.0",
                 "ai-edge-litert>=2.3,<2.4", "tf2onnx>=1.17,<1.18", "onnx>=1.23", "onnxruntime>=1.31"],
    },
    entry_points={"console_scripts": ["shiftinv=keras_shiftinv.cli:main"]},
)
