"""Export to safetensors and ONNX, and ``latentbench embed``, on real MNIST digits."""

import pickle
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from typer.testing import CliRunner

from latentbench.cli import app
from latentbench.data import read_images, read_labels, subsample
from latentbench.export import load_safetensors
from latentbench.models import AUTOENCODERS, make_pca, save_pca
from latentbench.training import (
    TrainSettings,
    encode,
    fit_autoencoder,
    init_autoencoder,
)

runner = CliRunner()
# Not the models' default of 2, so a loader that ignored the stored size would fail.
N_COMPONENTS = 3
# ONNX Runtime and PyTorch order float32 sums differently: agreement to 1e-5,
# relative to the codes' size (they reach tens) and absolute near zero.
ONNX_TOL = {"rtol": 1e-5, "atol": 1e-5}


def invoke(*args):
    return runner.invoke(app, ["--quiet", *map(str, args)])


def one_line(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def checkpoints(mnist_small, tmp_path_factory):
    """kind -> best checkpoint after one epoch on real MNIST, trained on first use."""
    settings = TrainSettings(
        max_epochs=1, batch_size=128, seed=0, accelerator="cpu", progress=False
    )
    data = subsample(mnist_small, 1000, 200, 1000)  # one short epoch is enough
    cache = {}

    def get(kind):
        if kind not in cache:
            model = init_autoencoder(kind, N_COMPONENTS, 1e-3, seed=0)
            out = tmp_path_factory.mktemp(f"export-{kind}")
            result = fit_autoencoder(model, data, settings, out)
            cache[kind] = result.best_checkpoint
        return cache[kind]

    return get


@pytest.fixture(scope="module", params=sorted(AUTOENCODERS))
def trained(request, checkpoints):
    """(kind, model in eval mode, its best checkpoint)."""
    kind = request.param
    checkpoint = checkpoints(kind)
    model = AUTOENCODERS[kind].load_from_checkpoint(checkpoint).eval()
    return kind, model, checkpoint


@pytest.fixture(scope="module")
def cnn_checkpoint(checkpoints):
    return checkpoints("cnn")


def test_safetensors_round_trip_gives_the_same_codes(trained, mnist_small, tmp_path):
    from safetensors import safe_open

    kind, model, checkpoint = trained
    path = tmp_path / "model.safetensors"
    result = invoke("export", checkpoint, "--format", "safetensors", "--out", path)
    assert result.exit_code == 0, result.output

    with safe_open(path, framework="pt") as f:
        metadata, names = f.metadata(), list(f.keys())
    assert metadata["kind"] == kind and metadata["n_components"] == str(N_COMPONENTS)
    assert metadata["input_shape"] == "[1, 28, 28]"
    assert names and all(n.split(".")[0] in ("encoder", "decoder") for n in names)
    assert set(names) == set(model.state_dict())

    loaded = load_safetensors(path)
    assert type(loaded) is type(model) and loaded.n_components == N_COMPONENTS
    X = mnist_small.test.X
    Z = encode(model, X)
    torch.testing.assert_close(encode(loaded, X), Z, rtol=0, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(Z), model.decode(Z), rtol=0, atol=1e-6)
    # The trained weights, not a fresh model's: a new init encodes differently.
    fresh = AUTOENCODERS[kind](N_COMPONENTS).eval()
    assert (encode(fresh, X) - Z).abs().max() > 1e-2


def test_safetensors_load_unpickles_nothing(trained, tmp_path, monkeypatch):
    from latentbench.export import export_safetensors

    _, model, _ = trained
    path = export_safetensors(model, tmp_path / "m.safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("a safetensors load must not unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert type(load_safetensors(path)) is type(model)


def test_onnx_encoder_and_decoder_match_pytorch(trained, mnist_small, tmp_path):
    import onnx
    import onnxruntime as ort

    kind, model, checkpoint = trained
    result = invoke("export", checkpoint, "--format", "onnx", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "decoder.onnx",
        "encoder.onnx",
    ]

    metadata = {
        p.key: p.value for p in onnx.load(tmp_path / "encoder.onnx").metadata_props
    }
    assert metadata["kind"] == kind and metadata["n_components"] == str(N_COMPONENTS)

    X = mnist_small.test.X
    Z = encode(model, X).numpy()
    encoder = ort.InferenceSession(tmp_path / "encoder.onnx")
    decoder = ort.InferenceSession(tmp_path / "decoder.onnx")
    # The batch dimension is dynamic: all 1,000 images at once, and a single one.
    assert_allclose(encoder.run(["z"], {"x": X.numpy()})[0], Z, **ONNX_TOL)
    assert_allclose(encoder.run(["z"], {"x": X[:1].numpy()})[0], Z[:1], **ONNX_TOL)
    with torch.no_grad():
        X_hat = model.decode(torch.from_numpy(Z)).numpy()
    assert_allclose(decoder.run(["x_hat"], {"z": Z})[0], X_hat, **ONNX_TOL)


def test_onnx_without_its_packages_names_the_extra(trained, tmp_path, monkeypatch):
    _, _, checkpoint = trained
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import now fails
    result = invoke("export", checkpoint, "--format", "onnx", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "ONNX export needs onnxscript" in one_line(result)
    assert "pip install 'latentbench[export]'" in one_line(result)
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("source", ["ckpt", "safetensors"])
def test_embed_idx_folder_equals_encode(
    source, cnn_checkpoint, mnist, mnist_dir, tmp_path
):
    from latentbench.export import export_safetensors

    model = AUTOENCODERS["cnn"].load_from_checkpoint(cnn_checkpoint).eval()
    model_path = cnn_checkpoint
    if source == "safetensors":
        model_path = export_safetensors(model, tmp_path / "cnn.safetensors")
    out = tmp_path / "Z.npz"
    result = invoke("embed", model_path, mnist_dir, "--out", out)
    assert result.exit_code == 0, result.output
    assert "wrote Z (10,000 x 3) and labels y" in one_line(result)

    with np.load(out, allow_pickle=False) as written:
        Z, y = written["Z"], written["y"]
    assert Z.shape == (10_000, N_COMPONENTS) and Z.dtype == np.float32
    assert_allclose(Z, encode(model, mnist.test.X).numpy(), rtol=0, atol=1e-6)
    assert_array_equal(y, mnist.test.y)


def test_embed_npz_uint8_and_float_images_agree(
    cnn_checkpoint, mnist, mnist_dir, tmp_path
):
    model = AUTOENCODERS["cnn"].load_from_checkpoint(cnn_checkpoint).eval()
    images = read_images(mnist_dir / "t10k-images-idx3-ubyte.gz")[:500]
    np.savez(tmp_path / "u8.npz", X=images, y=mnist.test.y[:500])
    np.savez(tmp_path / "f.npz", X=images.reshape(500, 784) / 255.0)

    outputs = {}
    for name in ("u8", "f"):
        out = tmp_path / f"Z_{name}.npz"
        result = invoke("embed", cnn_checkpoint, tmp_path / f"{name}.npz", "--out", out)
        assert result.exit_code == 0, result.output
        with np.load(out) as written:
            outputs[name] = dict(written)
    assert_array_equal(outputs["u8"]["y"], mnist.test.y[:500])
    assert "y" not in outputs["f"]
    expected = encode(model, mnist.test.X[:500]).numpy()
    assert_allclose(outputs["u8"]["Z"], expected, rtol=0, atol=1e-6)
    assert_allclose(outputs["f"]["Z"], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("split", ["test", "train"])
def test_embed_with_pca_equals_its_transform(
    split, mnist, mnist_small, mnist_dir, tmp_path
):
    pca = make_pca(N_COMPONENTS).fit(mnist_small.train.X_flat)
    save_pca(tmp_path / "pca.npz", pca)
    out = tmp_path / "Z.npz"
    result = invoke(
        "embed", tmp_path / "pca.npz", mnist_dir, "--split", split, "--out", out
    )
    assert result.exit_code == 0, result.output
    with np.load(out) as written:
        Z, y = written["Z"], written["y"]

    if split == "test":
        X, y_expected = mnist.test.X_flat, mnist.test.y
    else:  # all 60,000 training images in file order, no validation split removed
        images = read_images(mnist_dir / "train-images-idx3-ubyte.gz")
        X = images.reshape(len(images), -1).astype(np.float32) / 255
        y_expected = read_labels(mnist_dir / "train-labels-idx1-ubyte.gz")
    assert Z.shape == (len(X), N_COMPONENTS) and Z.dtype == np.float32
    assert_allclose(Z, pca.transform(X), rtol=0, atol=1e-5)
    assert_array_equal(y, y_expected)


def _write_bad_data(tmp_path):
    """name -> (data path, expected message); every file is real-looking but wrong."""
    digits = np.zeros((5, 28, 28), np.uint8)
    digits[:, 10:18, 12:16] = 255
    cases = {
        "missing": (tmp_path / "nope.npz", "does not exist"),
        "no X": (tmp_path / "noX.npz", "has no array 'X' (it holds: images)"),
        "shape": (
            tmp_path / "shape.npz",
            "X has shape (5, 27, 27); expected (n, 28, 28)",
        ),
        "dtype": (tmp_path / "dtype.npz", "X has dtype int64; expected uint8"),
        "range": (tmp_path / "range.npz", "X has values from 0 to 255; float images"),
        "nan": (tmp_path / "nan.npz", "X holds 1 NaN or infinite values"),
        "y": (tmp_path / "y.npz", "y has shape (4,) and dtype int64; expected"),
        "not npz": (tmp_path / "data.csv", "neither a folder of MNIST IDX files"),
        "corrupt": (tmp_path / "corrupt.npz", "cannot read"),
        "empty folder": (tmp_path / "empty", "holds no t10k-images-idx3-ubyte"),
    }
    np.savez(cases["no X"][0], images=digits)
    np.savez(cases["shape"][0], X=digits[:, :27, :27])
    np.savez(cases["dtype"][0], X=digits.astype(np.int64))
    np.savez(cases["range"][0], X=digits.astype(np.float32))
    nan = digits / 255.0
    nan[2, 3, 4] = np.nan
    np.savez(cases["nan"][0], X=nan)
    np.savez(cases["y"][0], X=digits, y=np.arange(4))
    cases["not npz"][0].write_text("1,2,3\n")
    cases["corrupt"][0].write_bytes(b"PK\x03\x04 not really a zip")
    cases["empty folder"][0].mkdir()
    return cases


BAD_DATA = [
    "missing",
    "no X",
    "shape",
    "dtype",
    "range",
    "nan",
    "y",
    "not npz",
    "corrupt",
    "empty folder",
]


@pytest.mark.parametrize("case", BAD_DATA)
def test_embed_refuses_bad_data_in_one_line(case, cnn_checkpoint, tmp_path):
    data, message = _write_bad_data(tmp_path)[case]
    out = tmp_path / "Z.npz"
    result = invoke("embed", cnn_checkpoint, data, "--out", out)
    assert result.exit_code == 2, result.output
    assert message in one_line(result)
    assert str(data.name) in one_line(result)
    assert "Traceback" not in result.output
    assert not out.exists()


def _bad_models(tmp_path, checkpoint):
    from safetensors.torch import save_file

    wrong_suffix = tmp_path / "model.pt"
    wrong_suffix.write_bytes(checkpoint.read_bytes())  # a good checkpoint, misnamed
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Evil()}, evil)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"decoder.0.weight": torch.zeros(4, 3)}}, other)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    not_pca = tmp_path / "notpca.npz"
    np.savez(not_pca, X=np.zeros(3))
    return {
        "missing": (tmp_path / "none.ckpt", "none.ckpt does not exist"),
        "suffix": (wrong_suffix, "has suffix '.pt'"),
        "pickle": (evil, "refused to load"),
        "other weights": (other, "holds weights of neither autoencoder"),
        "no metadata": (plain, "was not written by latentbench export"),
        "garbage": (garbage, "is not a readable safetensors file"),
        "not pca": (not_pca, "is not a PCA model: missing"),
    }


class _Evil:
    def __reduce__(self):
        return (print, ("this would have run",))


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "suffix",
        "pickle",
        "other weights",
        "no metadata",
        "garbage",
        "not pca",
    ],
)
def test_embed_refuses_bad_models_in_one_line(
    case, cnn_checkpoint, mnist_dir, tmp_path
):
    model, message = _bad_models(tmp_path, cnn_checkpoint)[case]
    out = tmp_path / "Z.npz"
    result = invoke("embed", model, mnist_dir, "--out", out)
    assert result.exit_code == 2, result.output
    assert message in one_line(result)
    assert "this would have run" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "export_format, out, message",
    [
        ("tflite", "new", "--format 'tflite' is not one of safetensors, onnx"),
        ("safetensors", "folder", "is a folder; safetensors export writes one file"),
        ("onnx", "file", "is a file; ONNX export writes encoder.onnx and decoder.onnx"),
    ],
)
def test_export_refuses_bad_options(
    export_format, out, message, cnn_checkpoint, tmp_path
):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("keep me")
    result = invoke(
        "export", cnn_checkpoint, "--format", export_format, "--out", tmp_path / out
    )
    assert result.exit_code == 2
    assert message in one_line(result)
    assert not (tmp_path / "new").exists()
    assert list((tmp_path / "folder").iterdir()) == []
    assert (tmp_path / "file").read_text() == "keep me"


def test_export_refuses_a_pca(mnist_small, tmp_path):
    save_pca(tmp_path / "pca.npz", make_pca(2).fit(mnist_small.train.X_flat[:500]))
    out = tmp_path / "pca.safetensors"
    result = invoke("export", tmp_path / "pca.npz", "--out", out)
    assert result.exit_code == 2
    assert "pca.npz is neither a Lightning checkpoint (.ckpt) nor a safetensors" in (
        one_line(result)
    )
    assert not out.exists()


def test_embed_refuses_bad_options(cnn_checkpoint, mnist_dir, tmp_path):
    result = invoke("embed", cnn_checkpoint, mnist_dir, "--out", tmp_path / "Z.csv")
    assert result.exit_code == 2
    assert "--out" in one_line(result) and "must end in .npz" in one_line(result)
    result = invoke(
        "embed",
        cnn_checkpoint,
        mnist_dir,
        "--split",
        "val",
        "--out",
        tmp_path / "Z.npz",
    )
    assert result.exit_code == 2
    assert "--split 'val' is not one of test, train" in one_line(result)
    (tmp_path / "codes.npz").mkdir()
    result = invoke("embed", cnn_checkpoint, mnist_dir, "--out", tmp_path / "codes.npz")
    assert result.exit_code == 2
    assert "is a folder; expected a file name ending in .npz" in one_line(result)
    result = invoke(
        "embed", cnn_checkpoint, mnist_dir, "--out", tmp_path / "missing" / "Z.npz"
    )
    assert result.exit_code == 2
    assert "does not exist" in one_line(result)
