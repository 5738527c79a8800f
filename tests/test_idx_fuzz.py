"""Fuzzing the IDX reader: it returns the declared shape or raises IDXFormatError."""

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentbench.data.idx import encode_idx, parse_idx
from latentbench.errors import IDXFormatError

TYPE_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x07, 0xFF]


def _check(payload: bytes) -> None:
    try:
        array = parse_idx(payload, "fuzz")
    except IDXFormatError:
        return
    n_dims = payload[3]
    shape = struct.unpack(f">{n_dims}I", payload[4 : 4 + 4 * n_dims])
    assert array.shape == shape


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes(payload):
    _check(payload)


@settings(max_examples=400)
@given(
    type_code=st.sampled_from(TYPE_CODES),
    shape=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=5),
    body=st.binary(max_size=300),
)
def test_random_headers(type_code, shape, body):
    header = struct.pack(">HBB", 0, type_code, len(shape))
    header += struct.pack(f">{len(shape)}I", *shape)
    _check(header + body)


@settings(max_examples=300)
@given(
    data=st.data(),
    n=st.integers(1, 4),
)
def test_mutated_valid_files(data, n):
    rng = np.random.default_rng(n)
    payload = bytearray(encode_idx(rng.integers(0, 256, (n, 5, 4), dtype=np.uint8)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    _check(bytes(payload[:cut]))
    _check(bytes(payload))
