import numpy as np
import pytest
from PIL import Image

from latentbench.figures import embedding_figures


@pytest.mark.parametrize("k, extra", [(2, set()), (3, {"scatter3d_pca.png"})])
def test_every_scatter_is_written_and_drawn(tmp_path, k, extra):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 20)
    Z = rng.normal(size=(200, k)) + y[:, None]

    written = embedding_figures({"pca": Z}, y, tmp_path, {"pca": "5-NN accuracy 0.5"})

    names = {p.name for p in written}
    assert names == {"scatter_pca.png", "scatter_all.png"} | extra
    assert {p.name for p in tmp_path.iterdir()} == names  # no temporary files left
    for path in written:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        # Ten tab10 colours at least: the digits are coloured, not blank or grey.
        colours = {tuple(p) for p in pixels[np.ptp(pixels, axis=1) > 60]}
        assert len(colours) > 10, path.name


from latentbench import figures
from latentbench.models import make_pca


def _pixels(path):
    with Image.open(path) as image:
        return image.size, np.asarray(image.convert("L"), dtype=float)


def _assert_drawn(path, min_size):
    (width, height), grey = _pixels(path)
    assert width >= min_size[0] and height >= min_size[1], (path.name, width, height)
    assert grey.std() > 15, path.name  # not blank
    return width, height


def test_image_mosaic_tiles_in_reading_order():
    images = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    mosaic = figures.image_mosaic(images, n_cols=3, pad=1, fill=-1)
    assert mosaic.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_array_equal(mosaic[0:2, 4:7], images[1])
    np.testing.assert_array_equal(mosaic[3:5, 0:3], images[3])
    assert (mosaic[2] == -1).all() and (mosaic[3:5, 8:] == -1).all()


def test_reconstruction_grid_draws_the_originals_row(mnist_small, tmp_path):
    X = mnist_small.test.X_flat[:20]
    y = mnist_small.test.y[:20]
    pca = make_pca(5).fit(mnist_small.train.X_flat)
    X_hat = pca.inverse_transform(pca.transform(X))
    path = figures.reconstruction_grid(
        X, {"pca": X_hat}, y, tmp_path / "r.png", {"pca": 0.05}
    )
    width, height = _assert_drawn(path, (1000, 150))
    assert width > 3 * height  # one long row per model


def test_eigendigits_and_latent_map(mnist_small, tmp_path):
    pca = make_pca(12).fit(mnist_small.train.X_flat)
    path = figures.eigendigits(
        pca.components_, pca.explained_variance_ratio_, pca.mean_, tmp_path / "e.png"
    )
    _assert_drawn(path, (1000, 250))

    pca2 = make_pca(2).fit(mnist_small.train.X_flat)
    Z = pca2.transform(mnist_small.test.X_flat)
    z1, z2 = np.linspace(-3, 3, 6), np.linspace(-2, 2, 5)
    codes = np.array([[a, b] for b in z2 for a in z1])
    images = pca2.inverse_transform(codes).reshape(5, 6, 28, 28)
    path = figures.latent_map(
        Z, mnist_small.test.y, images, z1, z2, "pca", tmp_path / "m.png"
    )
    _assert_drawn(path, (1200, 600))


def test_confusion_and_training_curves(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 50)
    y_pred = np.where(rng.random(500) < 0.7, y, rng.integers(0, 10, 500))
    counts = np.zeros((10, 10), int)
    np.add.at(counts, (y, y_pred), 1)
    path = figures.confusion_matrices(
        {"pca": counts, "fc": counts.T}, tmp_path / "c.png"
    )
    _assert_drawn(path, (900, 450))

    log = {
        "epoch": np.arange(4),
        "train_loss": np.array([0.1, 0.06, 0.05, 0.045]),
        "val_loss": np.array([0.08, 0.055, 0.05, 0.051]),
    }
    path = figures.training_curves({"fc": log, "cnn": log}, tmp_path / "t.png")
    _assert_drawn(path, (1000, 350))


def test_sweep_figures(tmp_path):
    sizes = [2, 3, 5, 10]
    mse = {"pca": np.array([0.056, 0.05, 0.043, 0.03]), "fc": np.array([0.04] * 4)}
    explained = np.cumsum(np.linspace(0.1, 0.01, 10))
    path = figures.sweep_mse(sizes, mse, explained, tmp_path / "s.png")
    _assert_drawn(path, (1200, 450))
    spread = {name: values / 10 for name, values in mse.items()}
    path = figures.sweep_metric(
        sizes, mse, "5-NN", "kNN", tmp_path / "k.png", spreads=spread
    )
    _assert_drawn(path, (600, 400))


def test_legends_and_pairs_use_the_class_names_of_the_data_set():
    import matplotlib.pyplot as plt

    from latentbench.report import pairs_finding, scatter_figure

    names = ("T-shirt/top", "Trouser", "Pullover")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    Z = rng.normal(size=(60, 2)) + 3 * y[:, None]

    named, plain = plt.subplots(1, 2)[1]
    figures._draw_2d(named, Z, y, "fc", names)
    assert named.get_legend_handles_labels()[1] == list(names)
    figures._draw_2d(plain, Z, y, "fc")
    assert plain.get_legend_handles_labels()[1] == ["0", "1", "2"]
    plt.close("all")

    plotly = scatter_figure({"fc": {"Z": Z, "y": y}}, "class", names)
    assert [trace.name for trace in plotly.data] == list(names)
    assert plotly.data[1].customdata[0][0] == "Trouser"
    assert plotly.data[1].hovertemplate.startswith("class %{customdata[0]}")
    # Names are markup to plotly: they arrive escaped.
    odd = scatter_figure({"fc": {"Z": Z, "y": y}}, "class", ["<b>a", "b", "c"])
    assert odd.data[0].name == "&lt;b&gt;a"

    counts = np.array([[18, 2, 0], [0, 20, 0], [1, 0, 19]])
    (sentence,) = pairs_finding({"fc": counts}, names)
    assert "T-shirt/top vs Trouser (2," in sentence
    assert "T-shirt/top vs Pullover (1," in sentence
    (digits,) = pairs_finding({"fc": counts})
    assert "0/1 (2," in digits and "0/2 (1," in digits
    assert figures.plural("class") == "classes" and figures.plural("digit") == "digits"
