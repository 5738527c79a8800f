"""The reducers latentbench compares."""

from latentbench.models.autoencoders import Autoencoder, ConvAutoencoder, FCAutoencoder
from latentbench.models.pca import load_pca, make_pca, save_pca

AUTOENCODERS = {"fc": FCAutoencoder, "cnn": ConvAutoencoder}

__all__ = [
    "AUTOENCODERS",
    "Autoencoder",
    "ConvAutoencoder",
    "FCAutoencoder",
    "load_pca",
    "make_pca",
    "save_pca",
]
