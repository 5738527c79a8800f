"""Trained autoencoders as files that other programs read: safetensors and ONNX.

::

    model.safetensors   every weight (``encoder.*``, ``decoder.*``) and, in the
                        header's metadata, ``format``, ``format_version``, ``kind``,
                        ``n_components``, ``input_shape`` (JSON), ``learning_rate``
                        and ``latentbench_version``
    encoder.onnx        images ``x`` (batch, 1, 28, 28), float32 on [0, 1], to
                        codes ``z`` (batch, n_components)
    decoder.onnx        codes ``z`` (batch, n_components) to images ``x_hat``
                        (batch, 1, 28, 28) on [0, 1]

The batch dimension of both ONNX graphs is dynamic, and they carry the same metadata
as the safetensors header. Neither format holds code: a safetensors file is a JSON
header and raw tensor bytes, so :func:`load_safetensors` unpickles nothing.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from latentbench import __version__
from latentbench._io import atomic_path
from latentbench.constants import IMAGE_SHAPE
from latentbench.errors import CheckpointError, ConfigError, MissingDependencyError
from latentbench.models import AUTOENCODERS, Autoencoder
from latentbench.models.autoencoders import KIND_KEY, load_checkpoint_dict

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "latentbench.autoencoder"
EXPORT_FORMAT_VERSION = 1
EXPORT_FORMATS = ("safetensors", "onnx")
ONNX_FILES = ("encoder.onnx", "decoder.onnx")
# Traced with two images: a batch of one would let the exporter fix the size at 1.
_EXAMPLE_BATCH = 2


def autoencoder_kind(model: Autoencoder) -> str:
    """``"fc"``, ``"cnn"`` or ``"vae"``: ``model``'s class in ``AUTOENCODERS``."""
    for kind, cls in AUTOENCODERS.items():
        if type(model) is cls:
            return kind
    raise TypeError(
        f"expected one of latentbench's autoencoders "
        f"({', '.join(c.__name__ for c in AUTOENCODERS.values())}), "
        f"got {type(model).__name__}"
    )


def export_metadata(model: Autoencoder) -> dict[str, str]:
    """What an export records about ``model``, as the strings safetensors stores."""
    return {
        "format": EXPORT_FORMAT,
        "format_version": str(EXPORT_FORMAT_VERSION),
        "kind": autoencoder_kind(model),
        "n_components": json.dumps(int(model.n_components)),
        "input_shape": json.dumps(list(model.input_shape)),
        "learning_rate": json.dumps(float(model.learning_rate)),
        # Every constructor argument, so that the architecture can be rebuilt.
        "hparams": json.dumps(_plain(dict(model.hparams))),
        "latentbench_version": __version__,
    }


def export_safetensors(model: Autoencoder, path: str | os.PathLike) -> Path:
    """Write ``model``'s encoder and decoder weights to a safetensors file.

    Parameters
    ----------
    model : FCAutoencoder or ConvAutoencoder
    path : path
        The file to write, atomically (a temporary name, then a rename).

    Returns
    -------
    Path
        ``path``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"--out {path} is a folder; safetensors export writes one file, such as "
            f"{path / 'model.safetensors'}"
        )
    metadata = export_metadata(model)
    # safetensors stores dense, CPU tensors; the state dict holds only the encoder's
    # and decoder's parameters, named encoder.<layer>.<name> and decoder.<...>.
    tensors = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
    }
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)
    logger.info(
        "exported %s weights (%d tensors) to %s", metadata["kind"], len(tensors), path
    )
    return path


def load_safetensors(path: str | os.PathLike) -> Autoencoder:
    """Restore an autoencoder written by :func:`export_safetensors`, in eval mode.

    The kind and size of the model come from the header's metadata; every weight must
    be there, with the shape that model expects.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"safetensors file {path} does not exist")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            names = list(f.keys())  # a safe_open handle is not iterable
            tensors = {name: f.get_tensor(name) for name in names}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file: {exc}"
        ) from None

    kind, n_components, learning_rate = _read_metadata(metadata, path)
    hparams = _read_hparams(metadata, path)
    hparams.update(n_components=n_components, learning_rate=learning_rate)
    try:
        model = AUTOENCODERS[kind](**hparams)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: metadata 'hparams' does not describe a {kind} autoencoder: {exc}"
        ) from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path} does not hold the weights of a {kind} autoencoder with "
            f"n_components={n_components}: {first_line}"
        ) from None
    return model.eval()


def _read_metadata(metadata: dict[str, str], path: Path) -> tuple[str, int, float]:
    """``(kind, n_components, learning_rate)`` from an export's header metadata."""
    if metadata.get("format") != EXPORT_FORMAT:
        raise CheckpointError(
            f"{path} was not written by latentbench export: its header metadata has "
            f"format {metadata.get('format')!r}, expected {EXPORT_FORMAT!r}"
        )
    kind = metadata.get("kind")
    if kind not in AUTOENCODERS:
        raise CheckpointError(
            f"{path}: metadata 'kind' is {kind!r}; expected one of "
            f"{', '.join(AUTOENCODERS)}"
        )
    fields = {}
    for name in ("n_components", "input_shape", "learning_rate"):
        try:
            fields[name] = json.loads(metadata[name])
        except (KeyError, json.JSONDecodeError):
            raise CheckpointError(
                f"{path}: metadata {name!r} is missing or not JSON "
                f"(found {metadata.get(name)!r})"
            ) from None
    n_components = fields["n_components"]
    if not isinstance(n_components, int) or n_components < 1:
        raise CheckpointError(
            f"{path}: metadata 'n_components' is {n_components!r}; expected a "
            "positive integer"
        )
    shape = fields["input_shape"]
    if not (
        isinstance(shape, list)
        and len(shape) == len(IMAGE_SHAPE)
        and all(isinstance(n, int) and n >= 1 for n in shape)
    ):
        raise CheckpointError(
            f"{path}: metadata 'input_shape' is {shape!r}; expected [channels, "
            "height, width], such as [1, 28, 28]"
        )
    return kind, n_components, float(fields["learning_rate"])


def _read_hparams(metadata: dict[str, str], path: Path) -> dict[str, Any]:
    """The constructor arguments an export recorded; none for an early export."""
    if "hparams" not in metadata:
        return {}
    try:
        hparams = json.loads(metadata["hparams"])
    except json.JSONDecodeError:
        hparams = None
    if not isinstance(hparams, dict):
        raise CheckpointError(
            f"{path}: metadata 'hparams' is not a JSON object "
            f"(found {metadata['hparams']!r})"
        )
    return hparams


def _plain(value: Any) -> Any:
    """Tuples as lists, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def load_autoencoder(path: str | os.PathLike) -> Autoencoder:
    """An autoencoder from a Lightning ``.ckpt`` or a ``.safetensors`` export.

    A checkpoint does not name its model's class, so the kind is read off the names
    and shapes of its weights. Neither file is unpickled beyond plain data
    (checkpoints load with ``torch.load(weights_only=True)``).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    if path.suffix != ".ckpt":
        raise CheckpointError(
            f"{path} is neither a Lightning checkpoint (.ckpt) nor a safetensors "
            "export (.safetensors)"
        )
    checkpoint = load_checkpoint_dict(path)
    state_dict = checkpoint.get("state_dict")
    if not isinstance(state_dict, dict):
        raise CheckpointError(
            f"{path} holds no 'state_dict'; it is not a Lightning checkpoint"
        )
    kind = checkpoint.get(KIND_KEY)
    if kind not in AUTOENCODERS:
        # The reference study's checkpoints do not name their model.
        kind = _kind_of(state_dict, path)
    return AUTOENCODERS[kind].load_from_checkpoint(path).eval()


def _kind_of(state_dict: dict[str, torch.Tensor], path: Path) -> str:
    """The autoencoder whose weights have exactly these names and shapes."""
    width = state_dict.get("decoder.0.weight")
    if isinstance(width, torch.Tensor) and width.ndim == 2:
        shapes = {name: tuple(t.shape) for name, t in state_dict.items()}
        for kind, cls in AUTOENCODERS.items():
            expected = cls(int(width.shape[1])).state_dict()
            if shapes == {name: tuple(t.shape) for name, t in expected.items()}:
                return kind
    raise CheckpointError(
        f"{path} holds weights of neither autoencoder ({', '.join(AUTOENCODERS)}) "
        "of latentbench"
    )


def export_onnx(model: Autoencoder, folder: str | os.PathLike) -> list[Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` of ``model`` into ``folder``.

    Both graphs take any batch size. Needs the ``onnx`` and ``onnxscript`` packages
    (``pip install 'latentbench[export]'``); without them a
    :class:`~latentbench.errors.MissingDependencyError` says so.

    Parameters
    ----------
    model : FCAutoencoder or ConvAutoencoder
        Exported on the CPU from a copy; ``model`` itself is left as it was.
    folder : path
        Created if missing; each file is written atomically.

    Returns
    -------
    list of Path
        The encoder's and the decoder's file.
    """
    _require_onnx_exporter()
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"--out {folder} is a file; ONNX export writes encoder.onnx and "
            "decoder.onnx into a folder"
        )
    metadata = export_metadata(model)
    parts = (
        (_Encoder(model), torch.zeros(_EXAMPLE_BATCH, *model.input_shape), "x", "z"),
        (model.decoder, torch.zeros(_EXAMPLE_BATCH, model.n_components), "z", "x_hat"),
    )
    written = []
    for file_name, (module, example, input_name, output_name) in zip(ONNX_FILES, parts):
        module = copy.deepcopy(module).cpu().eval()
        with _quiet_exporter():
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                verbose=False,
            )
        program.model.metadata_props.update(metadata)
        path = folder / file_name
        with atomic_path(path) as tmp:
            program.save(tmp, external_data=False)
        written.append(path)
    logger.info("exported %s encoder and decoder to %s", metadata["kind"], folder)
    return written


class _Encoder(torch.nn.Module):
    """``model.encode`` as a module: the codes, which for the VAE are the means."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


def _require_onnx_exporter() -> None:
    """Refuse, naming the extra to install, when torch's ONNX exporter cannot run."""
    missing = []
    for package in ("onnx", "onnxscript"):
        try:
            importlib.import_module(package)
        except ImportError:
            missing.append(package)
    if missing:
        raise MissingDependencyError(
            f"ONNX export needs {' and '.join(missing)}, which this environment "
            "lacks; install the export extra: pip install 'latentbench[export]'"
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # torch's exporter warns, on every export, about torchvision operators it cannot
    # register and deprecated pytree classes; none of it concerns these models.
    torch_onnx = logging.getLogger("torch.onnx")
    level = torch_onnx.level
    torch_onnx.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        torch_onnx.setLevel(level)
