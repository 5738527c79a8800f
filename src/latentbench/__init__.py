"""latentbench: what a non-linear autoencoder buys you over PCA, measured."""

__version__ = "0.1.0"
