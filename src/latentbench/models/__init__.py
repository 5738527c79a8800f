"""The reducers latentbench compares."""

from latentbench.models.autoencoders import (
    Autoencoder,
    ConvAutoencoder,
    FCAutoencoder,
    VariationalAutoencoder,
)
from latentbench.models.pca import load_pca, make_pca, save_pca

AUTOENCODERS = {
    cls.kind: cls for cls in (FCAutoencoder, ConvAutoencoder, VariationalAutoencoder)
}

__all__ = [
    "AUTOENCODERS",
    "Autoencoder",
    "ConvAutoencoder",
    "FCAutoencoder",
    "VariationalAutoencoder",
    "load_pca",
    "make_pca",
    "save_pca",
]
