"""latentbench: what a non-linear autoencoder buys you over PCA, measured."""

__version__ = "0.1.0"

__all__ = ["AutoencoderReducer", "__version__"]


def __getattr__(name: str):
    # Imported on first use: the reducer pulls in scikit-learn and torch, and
    # `import latentbench` should stay light.
    if name == "AutoencoderReducer":
        from latentbench.reducer import AutoencoderReducer

        return AutoencoderReducer
    raise AttributeError(f"module 'latentbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
