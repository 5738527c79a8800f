"""Downloads, against a local HTTP server on 127.0.0.1 serving real and broken files."""

import functools
import http.server
import shutil
import threading

import pytest

from latentbench.data import load_mnist
from latentbench.data.datasets import MNIST_PAYLOAD_SHA256, download_mnist
from latentbench.errors import ChecksumError

NAMES = list(MNIST_PAYLOAD_SHA256)


@pytest.fixture
def serve(tmp_path):
    """Start a server per folder; yield a function folder -> base URL."""
    servers = []

    def start(folder):
        handler = functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=str(folder)
        )
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def good_mirror(tmp_path, mnist_dir):
    folder = tmp_path / "good"
    shutil.copytree(mnist_dir, folder)
    return folder


@pytest.fixture
def corrupt_mirror(tmp_path, mnist_dir):
    """The real files with one byte of each compressed payload's data changed."""
    import gzip

    folder = tmp_path / "corrupt"
    folder.mkdir()
    for name in NAMES:
        payload = bytearray(gzip.decompress((mnist_dir / f"{name}.gz").read_bytes()))
        payload[-1] ^= 0xFF
        (folder / f"{name}.gz").write_bytes(gzip.compress(bytes(payload)))
    return folder


def test_download_verifies_and_caches(tmp_path, serve, good_mirror):
    cache = tmp_path / "cache"
    files = download_mnist(cache, mirrors=[serve(good_mirror)])
    assert sorted(files) == sorted(NAMES)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(
        f"{n}.gz" for n in NAMES
    )


def test_corrupt_mirror_is_skipped_for_the_next(
    tmp_path, serve, good_mirror, corrupt_mirror
):
    cache = tmp_path / "cache"
    files = download_mnist(cache, mirrors=[serve(corrupt_mirror), serve(good_mirror)])
    data_bytes = {n: files[n].read_bytes() for n in NAMES}
    assert data_bytes == {n: (good_mirror / f"{n}.gz").read_bytes() for n in NAMES}
    assert not list((cache / "mnist").glob(".download-*"))


def test_no_verified_mirror_names_the_expected_hash(tmp_path, serve, corrupt_mirror):
    cache = tmp_path / "cache"
    expected = MNIST_PAYLOAD_SHA256[NAMES[0]]
    with pytest.raises(ChecksumError, match=f"expected payload SHA-256 {expected}"):
        download_mnist(cache, mirrors=[serve(corrupt_mirror)])
    assert list((cache / "mnist").iterdir()) == []


def test_missing_files_on_every_mirror_fall_back_to_the_subset(tmp_path, serve):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(RuntimeWarning, match="FALLING BACK"):
        data = load_mnist(mirrors=[serve(empty)])
    assert data.dataset == "mnist-5k"


def test_download_lands_in_the_cache_and_is_then_found(tmp_path, serve, good_mirror):
    data = load_mnist(mirrors=[serve(good_mirror)])
    assert data.data_source == "download"
    assert data.verified
    again = load_mnist(mirrors=[])
    assert again.data_source == "cache"


class _HangsUpHalfway(http.server.BaseHTTPRequestHandler):
    """Promises the whole file, sends half of it, then closes the connection."""

    folder = None

    def do_GET(self):
        data = (self.folder / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.connection.close()

    def log_message(self, *args):
        pass


@pytest.fixture
def hangs_up(mnist_dir):
    handler = type("Handler", (_HangsUpHalfway,), {"folder": mnist_dir})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_mirror_that_goes_away_mid_transfer_is_skipped(
    tmp_path, serve, hangs_up, good_mirror
):
    cache = tmp_path / "cache"
    files = download_mnist(cache, mirrors=[hangs_up, serve(good_mirror)])
    for name in NAMES:
        assert files[name].read_bytes() == (good_mirror / f"{name}.gz").read_bytes()
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(
        f"{n}.gz" for n in NAMES
    )


def test_only_a_mirror_that_goes_away_leaves_nothing(tmp_path, hangs_up):
    from latentbench.errors import DataError

    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="could not download train-images-idx3-ubyte"):
        download_mnist(cache, mirrors=[hangs_up])
    assert list((cache / "mnist").iterdir()) == []


def test_truncated_files_do_not_verify(tmp_path, serve, mnist_dir):
    folder = tmp_path / "truncated"
    folder.mkdir()
    for name in NAMES:
        data = (mnist_dir / f"{name}.gz").read_bytes()
        (folder / f"{name}.gz").write_bytes(data[: len(data) - 100])
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="not a valid gzip file"):
        download_mnist(cache, mirrors=[serve(folder)])
    assert list((cache / "mnist").iterdir()) == []
