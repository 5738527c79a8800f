"""Reading the IDX format that MNIST and its relatives ship in.

An IDX file is a big-endian header followed by a dense array::

    bytes 0-1   zero
    byte  2     element type (0x08 unsigned byte, 0x09 signed byte, 0x0B short,
                0x0C int, 0x0D float, 0x0E double)
    byte  3     number of dimensions, d
    then d      big-endian uint32 sizes, then prod(sizes) elements

The "magic number" is the whole first word: 2051 (0x00000803) for a stack of
unsigned-byte images, 2049 (0x00000801) for a vector of unsigned-byte labels.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from latentbench.errors import IDXFormatError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
MAX_DIMS = 4  # images are 3, labels 1; more is a corrupt header, not a use case

_GZIP_SIGNATURE = b"\x1f\x8b"
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_payload(path: str | os.PathLike) -> bytes:
    """Return the bytes of ``path``, decompressed when it is gzipped.

    A file whose name ends in ``.gz`` must be gzip; any other file is read as is
    unless it starts with the gzip signature.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IDXFormatError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix == ".gz" or raw[:2] == _GZIP_SIGNATURE:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXFormatError(
                f"{path} is not a valid gzip file ({exc}); download it again"
            ) from None
    return raw


def parse_idx(payload: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse an IDX payload into an array of its declared shape and native dtype.

    Parameters
    ----------
    payload : bytes
        The whole, decompressed file.
    source : str
        Name used in error messages.

    Returns
    -------
    ndarray of shape ``sizes`` declared by the header

    Raises
    ------
    IDXFormatError
        If the header is malformed or the payload length differs from the header's.
    """
    if len(payload) < 4:
        raise IDXFormatError(
            f"{source} is {len(payload)} bytes long, too short for an IDX header"
        )
    zero, type_code, n_dims = struct.unpack(">HBB", payload[:4])
    if zero != 0 or type_code not in _DTYPES:
        magic = struct.unpack(">I", payload[:4])[0]
        raise IDXFormatError(
            f"{source} has magic number {magic} (0x{magic:08X}), not an IDX file; "
            f"expected {IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels"
        )
    if not 1 <= n_dims <= MAX_DIMS:
        magic = struct.unpack(">I", payload[:4])[0]
        raise IDXFormatError(
            f"{source} has magic number {magic} (0x{magic:08X}) declaring {n_dims} "
            f"dimensions; expected {IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels"
        )

    header_len = 4 + 4 * n_dims
    if len(payload) < header_len:
        raise IDXFormatError(
            f"{source} is truncated inside its header: {len(payload)} bytes, "
            f"the header alone needs {header_len}"
        )
    shape = struct.unpack(f">{n_dims}I", payload[4:header_len])
    dtype = _DTYPES[type_code]
    expected = header_len + math.prod(shape) * dtype.itemsize  # exact, no overflow
    if len(payload) != expected:
        what = "truncated" if len(payload) < expected else "longer than declared"
        raise IDXFormatError(
            f"{source} is {what}: header declares shape {tuple(shape)} "
            f"({expected} bytes in all), file holds {len(payload)} bytes"
        )
    try:
        array = np.frombuffer(payload, dtype=dtype, offset=header_len).reshape(shape)
    except ValueError:
        # An empty array whose other sizes overflow numpy's addressable size.
        raise IDXFormatError(
            f"{source} declares shape {tuple(shape)}, too large to represent"
        ) from None
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_expecting(path: str | os.PathLike, magic: int, n_dims: int) -> np.ndarray:
    payload = read_payload(path)
    if len(payload) >= 4:
        found = struct.unpack(">I", payload[:4])[0]
        zero, type_code, found_dims = struct.unpack(">HBB", payload[:4])
        # A valid IDX header of the wrong kind (labels read as images, floats, or a
        # dimension count that is not this file's) is named by its magic number
        # before its sizes are read: those would only describe a nonsense shape.
        if zero == 0 and type_code in _DTYPES and found != magic:
            raise IDXFormatError(
                f"{path} has magic number {found} (0x{found:08X}: "
                f"{_DTYPES[type_code].name} elements, {found_dims} dimension(s)); "
                f"expected {magic} (0x{magic:08X}: uint8, {n_dims} dimension(s))"
            )
    return parse_idx(payload, source=str(path))


def read_images(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX image file (magic 2051), gzipped or not.

    Returns
    -------
    ndarray of shape (n_samples, height, width), dtype uint8, values 0..255
    """
    return _read_expecting(path, IMAGES_MAGIC, 3)


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX label file (magic 2049), gzipped or not.

    Returns
    -------
    ndarray of shape (n_samples,), dtype uint8
    """
    return _read_expecting(path, LABELS_MAGIC, 1)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an unsigned-byte array as an IDX payload (used to write test files)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()
