"""A user's own data: .npz files and image folders, with and without labels."""

import json

import numpy as np
import pytest

from latentbench.config import CompareConfig
from latentbench.data import load_dataset, resized_for_conv
from latentbench.data.user import TEST_FRACTION, VAL_FRACTION
from latentbench.errors import ConfigError, DataError


def _images(n: int, h: int = 20, w: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_npz_flat_or_square_uint8_or_float(tmp_path, flat, dtype):
    X = _images(200)
    stored = X.astype(np.float32) / 255 if dtype == "float32" else X
    stored = stored.reshape(200, -1) if flat else stored
    y = np.arange(200) % 4
    data = load_dataset(str(_npz(tmp_path / "d.npz", X=stored, y=y)), seed=0)

    assert data.image_size == (20, 20)
    assert (len(data.train), len(data.val), len(data.test)) == (140, 20, 40)
    assert data.class_names == ("0", "1", "2", "3")
    assert str(data.train.X.dtype) == "torch.float32"
    # Every image lands in exactly one split, on the [0, 1] scale, with its label.
    X_all = np.concatenate([s.X_flat for s in (data.train, data.val, data.test)])
    y_all = np.concatenate([s.y for s in (data.train, data.val, data.test)])
    order = np.lexsort(X_all.T[::-1])
    expected = X.reshape(200, -1).astype(np.float32) / 255
    np.testing.assert_allclose(X_all[order], expected[np.lexsort(expected.T[::-1])])
    assert np.bincount(y_all).tolist() == [50, 50, 50, 50]


def test_split_fractions_and_seed(tmp_path):
    path = str(_npz(tmp_path / "d.npz", X=_images(300)))
    a, b = load_dataset(path, seed=0), load_dataset(path, seed=0)
    other = load_dataset(path, seed=1)
    assert len(a.test) == round(TEST_FRACTION * 300)
    assert len(a.val) == round(VAL_FRACTION * 300)
    np.testing.assert_array_equal(a.test.X.numpy(), b.test.X.numpy())
    assert not np.array_equal(a.test.X.numpy(), other.test.X.numpy())


def test_npz_without_y_has_no_labels(tmp_path):
    data = load_dataset(str(_npz(tmp_path / "d.npz", X=_images(200))))
    assert not data.labelled
    assert data.class_names is None and data.n_classes is None
    assert data.train.y is None and data.test.y is None
    assert data.data_source == "npz"
    assert len(data.payload_sha256["d.npz"]) == 64


def test_string_labels_become_class_names(tmp_path):
    y = np.array(["cat", "dog"] * 100)
    data = load_dataset(str(_npz(tmp_path / "d.npz", X=_images(200), y=y)))
    assert data.class_names == ("cat", "dog")
    assert set(np.unique(data.train.y)) == {0, 1}


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"images": _images(200)}, r"d\.npz has no field 'X' \(it holds images\)"),
        ({"X": _images(200)[:, 0]}, r"field X has shape \(200, 20\): 20 pixels a row"),
        (
            {"X": _images(200)[:, None]},
            r"field X has shape \(200, 1, 20, 20\) \(4 dimensions\); expected",
        ),
        (
            {"X": _images(200).astype(np.float32)},
            (
                r"field X has float pixels from 0 to 255; expected uint8 pixels on "
                r"0\.\.255 or float pixels on \[0, 1\]"
            ),
        ),
        (
            {"X": _images(200).astype(np.int64)},
            r"field X has dtype int64; expected uint8 pixels",
        ),
        (
            {"X": np.full((200, 4, 4), np.nan, dtype=np.float32)},
            r"field X holds 3200 NaN or infinite values",
        ),
        (
            {"X": _images(200), "y": np.zeros(200, dtype=int)},
            r"field y holds the single class 0",
        ),
        (
            {"X": _images(200), "y": np.zeros((200, 2), dtype=int)},
            r"field y has shape \(200, 2\); expected \(n,\)",
        ),
        ({"X": _images(50)}, r"holds 50 images; at least 100 are needed"),
        (
            {"X": _images(200), "y": np.arange(150) % 3},
            r"field y has 150 labels but X has 200 images",
        ),
        (
            {"X": _images(200), "y": np.arange(400) % 3},
            r"field y has 400 labels but X has 200 images",
        ),
    ],
)
def test_bad_npz_is_refused_by_name(tmp_path, arrays, match):
    path = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=match):
        load_dataset(str(path))


def test_image_folder_classes_come_from_subfolders(tmp_path):
    from PIL import Image

    images = _images(120, 16, 12)
    for i, image in enumerate(images):
        folder = tmp_path / "shapes" / ("circle" if i % 3 else "square")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).convert("RGB").save(folder / f"{i:03d}.png")
    (tmp_path / "shapes" / "circle" / "notes.txt").write_text("not an image")

    data = load_dataset(str(tmp_path / "shapes"))
    assert data.class_names == ("circle", "square")
    assert data.image_size == (16, 12)
    assert data.data_source == "folder"
    n = sum(len(s) for s in (data.train, data.val, data.test))
    assert n == 120
    y = np.concatenate([data.train.y, data.val.y, data.test.y])
    assert np.bincount(y).tolist() == [80, 40]


def test_image_folder_of_mixed_sizes_names_the_file(tmp_path):
    from PIL import Image

    for name, size in (("a", (10, 10)), ("b", (12, 10))):
        (tmp_path / "d" / name).mkdir(parents=True)
        Image.new("L", size, 3).save(tmp_path / "d" / name / "x.png")
    with pytest.raises(DataError, match=r"image .*b/x\.png is 12x10 pixels but"):
        load_dataset(str(tmp_path / "d"))


def test_resized_for_conv(tmp_path):
    data = load_dataset(str(_npz(tmp_path / "d.npz", X=_images(200))))
    resized = resized_for_conv(data)
    assert tuple(resized.test.X.shape[1:]) == (1, 28, 28)
    assert 0.0 <= float(resized.test.X.min()) and float(resized.test.X.max()) <= 1.0
    assert resized_for_conv(resized) is resized


@pytest.mark.parametrize(
    ("dataset", "match"),
    [
        ("fashion", r"unknown dataset 'fashion' \(did you mean 'fashion-mnist'\?\)"),
        ("missing/d.npz", r"dataset path 'missing/d.npz' does not exist; expected"),
    ],
)
def test_config_names_the_dataset_and_what_is_expected(dataset, match):
    from latentbench.config import build

    with pytest.raises(ConfigError, match=match):
        build(CompareConfig, {"dataset": dataset}, "option")
    with pytest.raises(ConfigError, match="emnist-letters, or the path of a .npz"):
        build(CompareConfig, {"dataset": dataset}, "option")


def _compare(tmp_path, path, models):
    from latentbench.compare import run_compare

    config = CompareConfig(
        dataset=str(path), models=models, max_epochs=1, batch_size=64
    )
    out = tmp_path / "run"
    metrics = run_compare(config, out, progress=False)
    return out, metrics


def test_20x20_npz_runs_pca_fc_and_cnn_sees_28x28(tmp_path):
    y = np.arange(300) % 3
    path = _npz(tmp_path / "small.npz", X=_images(300), y=y)
    out, metrics = _compare(tmp_path, path, ["pca", "fc", "cnn"])

    assert metrics["models"]["fc"]["knn_accuracy"] is not None
    env = json.loads((out / "environment.json").read_text())
    assert env["image_size"] == [20, 20]
    assert env["data_source"] == "npz"
    assert env["payload_sha256"]["small.npz"]
    sample = np.load(out / "reconstructions.npz")
    assert sample["X_hat_fc"].shape[1:] == (20, 20)
    assert sample["X_hat_cnn"].shape[1:] == (28, 28)
    assert (out / "figures" / "confusion.png").is_file()
    assert (out / "report.html").is_file()


def test_unlabelled_npz_runs_and_skips_label_metrics(tmp_path, caplog):
    path = _npz(tmp_path / "nolabels.npz", X=_images(300))
    with caplog.at_level("INFO", logger="latentbench.compare"):
        out, _ = _compare(tmp_path, path, ["pca", "fc"])

    saved = json.loads((out / "metrics.json").read_text())
    for name in ("pca", "fc"):
        row = saved["models"][name]
        for key in ("knn_accuracy", "silhouette", "gmm_ari", "gmm_nmi"):
            assert row[key] is None
        assert row["trustworthiness"] is not None
    assert saved["class_names"] is None
    assert set(saved["skipped_metrics"]) == {
        "knn_accuracy",
        "silhouette",
        "gmm_ari",
        "gmm_nmi",
    }
    assert "no labels" in caplog.text
    assert (out / "figures" / "scatter_all.png").is_file()
    assert (out / "figures" / "scatter_pca.png").is_file()
    assert not (out / "figures" / "confusion.png").exists()
    clusters = np.load(out / "embeddings" / "pca.npz")["clusters"]
    assert len(np.unique(clusters)) <= 10
    assert "Skipped 5-NN accuracy" in (out / "report.html").read_text()
