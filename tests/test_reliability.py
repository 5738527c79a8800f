"""Interrupted, concurrent and diverging runs, and data nothing can learn from."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import write_idx, write_mnist_files
from latentbench.data.datasets import validate_images
from latentbench.errors import DataError, TrainingDivergedError
from latentbench.models import FCAutoencoder
from latentbench.training import TrainSettings, fit_autoencoder

TIMED_KEYS = {"fit_seconds", "total_seconds", "metric_seconds", "metric_timings"}


def cli(*args, **kwargs):
    command = [sys.executable, "-m", "latentbench", "--quiet", *map(str, args)]
    # As from a shell, Ctrl-C starts at its default: an ignored SIGINT, which
    # something in this test process may have left, would stay ignored across exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "LATENTBENCH_CACHE": os.environ["LATENTBENCH_CACHE"]},
        **kwargs,
    )


def run_cli(*args, timeout=600):
    process = cli(*args)
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def wait_for(path, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def quick_args(mnist_dir, out):
    return (
        "compare", "--data-dir", mnist_dir, "--n-train", 1000, "--n-test", 300,
        "--max-epochs", 4, "--patience", 10, "--models", "pca,fc,cnn", "--out", out,
    )  # fmt: skip


def test_killed_run_resumes_to_the_uninterrupted_metrics(tmp_path, mnist_dir):
    code, output = run_cli(*quick_args(mnist_dir, tmp_path / "whole"))
    assert code == 0, output

    killed = tmp_path / "killed"
    process = cli(*quick_args(mnist_dir, killed))
    # Kill while cnn is in training: pca and fc are done, cnn has a checkpoint.
    wait_for(killed / "models/cnn/checkpoints/last.ckpt", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((killed / "status.json").read_text())["state"] == "running"
    assert not (killed / "metrics.json").exists()
    assert (killed / "results/fc.json").is_file()
    fc_checkpoint_time = (killed / "models/fc/checkpoints/best.ckpt").stat().st_mtime

    code, output = run_cli("compare", "--resume", killed)
    assert code == 0, output

    whole = json.loads((tmp_path / "whole/metrics.json").read_text())["models"]
    resumed = json.loads((killed / "metrics.json").read_text())["models"]
    # Equal up to float32 rounding: two processes' CPU kernels may sum in another
    # order when the machine is busy (seen: codes differing by 1e-6).
    for model in whole:
        for key in whole[model].keys() - TIMED_KEYS:
            expected = whole[model][key]
            if isinstance(expected, float):
                expected = pytest.approx(expected, rel=1e-5, abs=1e-6)
            assert resumed[model][key] == expected, (model, key)
    assert (killed / "models/fc/checkpoints/best.ckpt").stat().st_mtime == (
        fc_checkpoint_time
    )  # finished models are not retrained
    assert json.loads((killed / "status.json").read_text())["state"] == "complete"
    assert not (killed / ".lock").exists()


def test_interrupted_run_says_how_to_resume(tmp_path, mnist_dir):
    out = tmp_path / "run"
    process = cli(*quick_args(mnist_dir, out))
    wait_for(out / "results/pca.json", process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130
    assert f"continue it with latentbench compare --resume {out}" in " ".join(
        output.split()
    )
    assert json.loads((out / "status.json").read_text())["state"] == "running"


def test_a_second_writer_is_refused(tmp_path, mnist_dir):
    out = tmp_path / "run"
    # Trains far longer than the test runs, so it still holds the folder.
    first = cli(
        "compare", "--data-dir", mnist_dir, "--n-train", 1000, "--n-test", 200,
        "--max-epochs", 1000, "--patience", 1000, "--models", "fc", "--out", out,
    )  # fmt: skip
    try:
        wait_for(out / ".lock", first)
        code, output = run_cli(*quick_args(mnist_dir, out))
        assert code == 2
        assert "already exists and is not empty" in output
        code, output = run_cli("compare", "--resume", out)
        assert code == 2
        assert f"another latentbench process (pid {first.pid}) is writing" in output
    finally:
        first.kill()
        first.wait()


def test_resume_refuses_folders_it_cannot_continue(tmp_path):
    code, output = run_cli("compare", "--resume", tmp_path)
    assert code == 2 and "has no config.json" in output
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "status.json").write_text('{"state": "complete"}')
    code, output = run_cli("compare", "--resume", tmp_path)
    assert code == 2 and "already complete; nothing to resume" in output


def test_constant_images_are_refused(tmp_path):
    write_mnist_files(tmp_path)
    write_idx(
        tmp_path / "train-images-idx3-ubyte.gz",
        np.zeros((5010, 28, 28), np.uint8),
        gz=True,
    )
    code, output = run_cli("compare", "--data-dir", tmp_path, "--out", tmp_path / "o")
    assert code == 2
    assert "5010 images that are all the same constant value 0" in output
    assert "Traceback" not in output
    assert read_state(tmp_path / "o") != "complete"


@pytest.mark.parametrize(
    "test_images, message",
    [
        (np.full((20, 28, 28), 7, np.uint8), "20 images that are all the same"),
        (np.zeros((0, 28, 28), np.uint8), "holds 0 test images; the metrics need"),
    ],
)
def test_unusable_test_images_are_refused(tmp_path, test_images, message):
    write_mnist_files(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_images, gz=True)
    labels = np.zeros(len(test_images), np.uint8)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, gz=True)
    code, output = run_cli(
        "compare", "--models", "pca", "--data-dir", tmp_path, "--out", tmp_path / "o"
    )
    assert code == 2
    assert "t10k-images-idx3-ubyte.gz holds" in output and message in output
    assert "Traceback" not in output
    assert not (tmp_path / "o").exists()


def read_state(out):
    path = out / "status.json"
    return json.loads(path.read_text())["state"] if path.exists() else None


@pytest.mark.parametrize(
    "X, message",
    [
        (torch.tensor([[0.5, float("nan")]]), "1 NaN or infinite pixel values"),
        (torch.tensor([[0.5, float("inf")]]), "1 NaN or infinite pixel values"),
        (torch.tensor([[0.0, 255.0]]), "pixels from 0 to 255; expected the [0, 1]"),
        (torch.full((3, 4), 0.5), "3 images that are all the same constant value"),
        (torch.zeros((0, 4)), "holds no images"),
    ],
)
def test_unlearnable_pixels_are_named(X, message):
    with pytest.raises(
        DataError, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        validate_images(X, "images.npz")


class _DivergesAtEpoch2(FCAutoencoder):
    def loss(self, x, x_in=None):
        loss = super().loss(x, x_in)
        return loss * float("nan") if self.current_epoch == 1 else loss


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(
    tmp_path, mnist_small
):
    settings = TrainSettings(max_epochs=5, batch_size=256, progress=False)
    with pytest.raises(
        TrainingDivergedError, match="at epoch 2, batch 1; try a smaller"
    ):
        fit_autoencoder(_DivergesAtEpoch2(2), mnist_small, settings, tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 0
    assert all(torch.isfinite(w).all() for w in checkpoint["state_dict"].values())


def test_resume_refuses_a_checkpoint_that_would_run_code(tmp_path, mnist_dir):
    out = tmp_path / "run"
    code, output = run_cli(
        "compare", "--data-dir", mnist_dir, "--n-train", 500, "--n-test", 200,
        "--max-epochs", 1, "--models", "fc", "--out", out,
    )  # fmt: skip
    assert code == 0, output
    marker = tmp_path / "payload-ran"
    evil = (
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    )  # pickle protocol 0: os.system("touch ...") when unpickled
    (out / "models/fc/checkpoints/last.ckpt").write_bytes(evil)
    (out / "results/fc.json").unlink()
    (out / "status.json").write_text('{"state": "running"}')

    code, output = run_cli("compare", "--resume", out)

    assert code == 2
    assert "refused to load" in output and "weights_only=True" in output
    assert not marker.exists()


def test_sigterm_during_training_exits_143_and_leaves_a_resumable_run(
    tmp_path, mnist_dir
):
    out = tmp_path / "run"
    process = cli(
        "compare", "--data-dir", mnist_dir, "--n-train", 1000, "--n-test", 200,
        "--max-epochs", 500, "--patience", 500, "--models", "fc", "--out", out,
    )  # fmt: skip
    wait_for(out / "models/fc/checkpoints/last.ckpt", process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    assert "latentbench compare --resume" in " ".join(output.split())
    assert json.loads((out / "status.json").read_text())["state"] == "running"
