"""Data sets, the IDX reader and the one data path every model consumes."""

from latentbench.data.datasets import (
    DATASET_NAMES,
    ImageData,
    Split,
    load_dataset,
    load_mnist,
    load_mnist_5k,
    resized_for_conv,
    subsample,
)
from latentbench.data.idx import read_images, read_labels

__all__ = [
    "DATASET_NAMES",
    "ImageData",
    "Split",
    "load_dataset",
    "load_mnist",
    "load_mnist_5k",
    "read_images",
    "read_labels",
    "resized_for_conv",
    "subsample",
]
