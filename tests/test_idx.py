import gzip
import struct

import numpy as np
import pytest

from conftest import write_idx
from latentbench.data.idx import encode_idx, parse_idx, read_images, read_labels
from latentbench.errors import IDXFormatError


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_of_a_small_image_file(tmp_path, gz):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28) % 256
    path = write_idx(tmp_path / ("x.gz" if gz else "x"), images.astype(np.uint8), gz)

    read = read_images(path)

    assert read.shape == (3, 28, 28)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, images)


def test_real_mnist_test_labels_have_the_published_counts(mnist_dir):
    labels = read_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")

    counts = np.bincount(labels, minlength=10)

    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_header_declares_the_magic_number():
    payload = encode_idx(np.zeros((2, 28, 28), np.uint8))
    assert struct.unpack(">I", payload[:4])[0] == 2051
    assert struct.unpack(">I", encode_idx(np.zeros(2, np.uint8))[:4])[0] == 2049


def test_labels_file_read_as_images_is_refused(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(IDXFormatError, match=r"magic number 2049 .*expected 2051"):
        read_images(path)


@pytest.mark.parametrize(
    "header, reader, found",
    [
        # An image file whose header says 4 dimensions: its sizes would run into
        # the pixels, so the message must name the magic number, not a shape.
        (struct.pack(">HBBIII", 0, 0x08, 4, 6, 28, 28), read_images, "2052"),
        (struct.pack(">HBBIII", 0, 0x0D, 3, 6, 28, 28), read_images, "3331"),
        (struct.pack(">HBBIII", 0, 0x08, 3, 6, 28, 28), read_labels, "2051"),
    ],
)
def test_idx_header_of_the_wrong_kind_names_its_magic(tmp_path, header, reader, found):
    path = tmp_path / "wrong-kind"
    path.write_bytes(header + bytes(6 * 28 * 28))
    with pytest.raises(IDXFormatError) as info:
        reader(path)
    message = str(info.value)
    assert f"has magic number {found}" in message
    assert "truncated" not in message and "expected 20" in message


def test_wrong_magic_number_is_refused(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(
        IDXFormatError, match=r"bad has magic number .* not an IDX file"
    ):
        read_images(path)


def test_truncated_payload_is_refused():
    payload = encode_idx(np.zeros((4, 28, 28), np.uint8))[:-10]
    with pytest.raises(
        IDXFormatError, match=r"truncated: header declares shape \(4, 28, 28\)"
    ):
        parse_idx(payload, "f")


def test_extra_bytes_are_refused():
    payload = encode_idx(np.zeros((4, 28, 28), np.uint8)) + b"\0"
    with pytest.raises(IDXFormatError, match="longer than declared"):
        parse_idx(payload, "f")


def test_truncated_header_is_refused():
    with pytest.raises(IDXFormatError, match="truncated inside its header"):
        parse_idx(b"\x00\x00\x08\x03\x00\x00", "f")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(IDXFormatError, match="0 bytes long, too short"):
        read_labels(path)


def test_gz_name_that_is_not_gzip_is_refused(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(encode_idx(np.zeros(3, np.uint8)))
    with pytest.raises(IDXFormatError, match="is not a valid gzip file"):
        read_labels(path)


def test_truncated_gzip_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(encode_idx(np.zeros((9, 28, 28), np.uint8)))[:-12])
    with pytest.raises(IDXFormatError, match="not a valid gzip file"):
        read_images(path)


def test_absurd_dimension_count_is_refused_in_one_short_line():
    payload = b"\x00\x00\x09\x99" + bytes(10_004)
    with pytest.raises(IDXFormatError) as info:
        parse_idx(payload, "labels")
    message = str(info.value)
    assert "declaring 153 dimensions; expected 2051 for images or 2049" in message
    assert len(message) < 200
