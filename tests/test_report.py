"""The report: figures from the run folder alone, findings from the numbers, and the
page itself in a real browser with no network."""

import io
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from _chromium import find_chromium, load_page
from latentbench.cli import app
from latentbench.report import (
    confused_pairs,
    confusion,
    findings,
    metric_finding,
    run_findings,
)

RUN_FIGURES_2D = {
    "scatter_all.png": (1200, 400),
    "scatter_pca.png": (600, 500),
    "latent_map_pca.png": (1200, 600),
    "latent_map_fc.png": (1200, 600),
    "latent_map_cnn.png": (1200, 600),
    "reconstructions.png": (1100, 250),
    "eigendigits.png": (300, 150),
    "confusion.png": (1500, 500),
    "training_curves.png": (1000, 400),
}


def _grey(path):
    with Image.open(path) as image:
        return image.size, np.asarray(image.convert("L"), dtype=float)


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("run_2d", RUN_FIGURES_2D),
        ("run_3d", {"scatter3d_fc.png": (700, 600), "confusion.png": (1500, 500)}),
    ],
)
def test_every_figure_is_written_sized_and_drawn(fixture, expected, request):
    folder = request.getfixturevalue(fixture) / "figures"
    for name, (min_width, min_height) in expected.items():
        (width, height), grey = _grey(folder / name)
        assert width >= min_width and height >= min_height, (name, width, height)
        assert grey.std() > 15, name
    assert not any(p.name.startswith(".") for p in folder.iterdir())


def test_report_is_one_self_contained_file(run_2d):
    text = (run_2d / "report.html").read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text
    # No markup outside the inlined scripts points anywhere off the page.
    markup = re.sub(r"<script>.*?</script>", "", text, flags=re.DOTALL)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)
    assert text.count('<img src="data:image/png;base64,') >= 8
    assert "Plotly.newPlot" in text and "@media print" in text
    for heading in ("Findings", "Results", "Reconstructions", "Settings"):
        assert f"<h2>{heading}" in text
    # the settings, the data hashes and the versions are in it
    for needle in ("max_epochs", "sha256 train-images-idx3-ubyte", "scikit-learn"):
        assert needle in text


def test_confused_pairs_count_both_directions():
    counts = np.diag([50] * 10)
    counts[4, 9], counts[9, 4] = 7, 5  # 12 of the 4s and 9s
    counts[1, 7] = 9
    counts[3, 5], counts[5, 3] = 1, 1
    pairs = confused_pairs(counts, top=2)
    assert [(p["a"], p["b"], p["count"]) for p in pairs] == [(4, 9, 12), (1, 7, 9)]
    assert pairs[0]["share"] == pytest.approx(12 / (57 + 55))
    y = np.array([0, 0, 1, 2])
    np.testing.assert_array_equal(
        confusion(y, np.array([0, 1, 1, 2]))[0], [1, 1] + [0] * 8
    )


ROWS = {
    "pca": {"recon_mse": 0.0557, "knn_accuracy": 0.422, "fit_seconds": 0.4},
    "fc": {"recon_mse": 0.0400, "knn_accuracy": 0.649, "fit_seconds": 101.0},
    "cnn": {"recon_mse": 0.0487, "knn_accuracy": 0.530, "fit_seconds": 248.0},
}


def test_findings_name_the_winner_and_the_margins():
    assert metric_finding(ROWS, "recon_mse") == (
        "Lowest reconstruction error (MSE per pixel): Fully connected AE, 0.0400, "
        "28% below PCA (0.0557), 18% below Convolutional AE (0.0487)."
    )
    assert metric_finding(ROWS, "knn_accuracy") == (
        "Best 5-NN accuracy: Fully connected AE, 0.649, 0.227 above PCA (0.422), "
        "0.119 above Convolutional AE (0.530)."
    )
    spread = {name: {"knn_accuracy": 0.05} for name in ROWS}
    sentence = metric_finding(ROWS, "knn_accuracy", spread)
    assert "(0.422); beyond the seed spread" in sentence
    assert "(0.530); beyond the seed spread" in sentence
    spread["cnn"]["knn_accuracy"] = 0.1
    assert "(0.530); within the seed spread" in metric_finding(
        ROWS, "knn_accuracy", spread
    )


def test_findings_follow_the_numbers_of_the_run(run_2d):
    import json

    metrics = json.loads((run_2d / "metrics.json").read_text())
    sentences = findings(run_2d)
    mse = {name: row["recon_mse"] for name, row in metrics["models"].items()}
    winner = min(mse, key=mse.get)
    titles = {"pca": "PCA", "fc": "Fully connected AE", "cnn": "Convolutional AE"}
    assert any(
        s.startswith(f"Lowest reconstruction error (MSE per pixel): {titles[winner]}")
        for s in sentences
    )
    pair_lines = [s for s in sentences if "most often mixes up" in s]
    assert len(pair_lines) == 3
    assert all(len(re.findall(r"\d/\d \(", s)) == 5 for s in pair_lines)
    assert sentences == run_findings(
        metrics["models"],
        {n: confusion(*_labels(run_2d, n)) for n in metrics["models"]},
    )


def _labels(run_dir, name):
    with np.load(run_dir / f"embeddings/{name}.npz") as saved:
        return saved["y"], saved["y_pred"]


def test_report_command_rebuilds_everything_from_the_folder(run_2d, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_2d, copy)
    shutil.rmtree(copy / "figures")
    (copy / "report.html").unlink()

    result = CliRunner().invoke(app, ["--quiet", "report", str(copy)])

    assert result.exit_code == 0, result.output
    assert "most often mixes up" in result.output
    assert (copy / "report.html").is_file()
    assert {p.name for p in (copy / "figures").iterdir()} == {
        p.name for p in (run_2d / "figures").iterdir()
    }


def test_report_command_refuses_a_folder_without_results(tmp_path):
    result = CliRunner().invoke(app, ["--quiet", "report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a finished latentbench run folder" in result.output


# ------------------------------------------------------------------ in a browser


@pytest.fixture
def chromium():
    if find_chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "CI=true but chromium is not installed; .ci/run installs it with "
                "apt-get install chromium"
            )
        pytest.skip("chromium is not installed (apt-get install chromium)")


PAGE_CHECKS = {
    "points": "document.querySelectorAll('.js-plotly-plot .scatterlayer .point')"
    ".length",
    "canvases": "document.querySelectorAll('.js-plotly-plot .gl-container canvas')"
    ".length",
    "no_webgl": "document.body.innerText.includes('WebGL is not supported')",
    "images": "Array.from(document.images).filter(i => i.naturalWidth > 0).length",
    "broken_images": "Array.from(document.images).filter(i => !i.naturalWidth).length",
    "overflow": "document.documentElement.scrollWidth > window.innerWidth",
    "scrolled": "document.getElementById('scatter').scrollIntoView(), window.scrollY",
}


def _assert_clean_load(page):
    assert page.errors == []
    assert page.outside_requests == []
    assert page.values["broken_images"] == 0
    assert not page.values["overflow"]  # reads on a 1366-pixel laptop screen
    assert page.values["scrolled"] > 0


def _colours(png: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    saturated = pixels[np.ptp(pixels.astype(int), axis=1) > 80]
    return len({tuple(p // 16) for p in saturated})


def test_report_renders_in_chromium_2d(chromium, run_2d):
    page = load_page(run_2d / "report.html", PAGE_CHECKS, pdf=True)

    _assert_clean_load(page)
    assert page.values["points"] == 3 * 1000  # every test point of every model
    assert page.values["images"] >= 8
    grey = np.asarray(Image.open(io.BytesIO(page.screenshot)).convert("L"), float)
    assert grey.std() > 20  # not blank
    assert _colours(page.screenshot) >= 10  # the coloured digits are on screen
    assert page.pdf.startswith(b"%PDF") and page.pdf.count(b"/Type /Page") >= 3


def test_report_renders_in_chromium_3d(chromium, run_3d):
    page = load_page(run_3d / "report.html", PAGE_CHECKS, settle_seconds=2.0)

    _assert_clean_load(page)
    assert page.values["canvases"] >= 3 and not page.values["no_webgl"]
    assert _colours(page.screenshot) >= 10
