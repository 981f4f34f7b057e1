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
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<3.16",
        "tensorflow-datasets>=4.9.4,<4.10",
        "importlib_resources",  # tfds needs it to prepare imagenet2012 but does not declare it
        "numpy>=1.26",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "tensorboard>=2.16",
        "pillow>=9",
    ],
    extras_require={
        "test": ["pytest>=7", "nbclient>=0.9", "nbformat>=5.9", "ipykernel>=6"],
    },
    entry_points={"console_scripts": ["shiftinv=keras_shiftinv.cli:main"]},
)
