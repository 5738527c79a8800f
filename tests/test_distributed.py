"""A real two-process DDP fit on the CPU (gloo) against a one-process fit."""

import json
import os
import subprocess
import sys

import pytest


def run(out, mnist_dir, *extra):
    command = [
        sys.executable, "-m", "latentbench", "--quiet", "compare",
        "--data-dir", str(mnist_dir), "--n-train", "2000", "--n-test", "500",
        "--max-epochs", "2", "--models", "fc", "--accelerator", "cpu",
        "--out", str(out), *extra,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text())["models"]["fc"]


def test_two_process_ddp_matches_one_process(tmp_path, mnist_dir):
    single = run(tmp_path / "single", mnist_dir)
    ddp = run(tmp_path / "ddp", mnist_dir, "--devices", "2", "--strategy", "ddp")

    # Each process takes half of every global batch and DDP averages the two
    # gradients, which is the one-process gradient up to float32 summation order.
    assert ddp["recon_mse"] == pytest.approx(single["recon_mse"], rel=1e-5)
    for key in ("knn_accuracy", "silhouette", "trustworthiness", "gmm_ari"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-3, abs=1e-3), key
    assert ddp["epochs"] == single["epochs"] == 2

    # Rank 0 alone wrote the run folder.
    config = json.loads((tmp_path / "ddp/config.json").read_text())
    assert config["devices"] == 2 and config["strategy"] == "ddp"
    checkpoints = sorted(os.listdir(tmp_path / "ddp/models/fc/checkpoints"))
    assert checkpoints == ["best.ckpt", "last.ckpt"]


def test_unsupported_strategy_names_the_alternatives(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "latentbench", "compare", "--strategy", "fsdp",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--strategy = 'fsdp'" in done.stdout + done.stderr
