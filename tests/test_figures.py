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
