import pytest
import torch

from latentbench.models import FCAutoencoder
from latentbench.training import (
    InMemoryBatches,
    TrainSettings,
    fit_autoencoder,
    init_autoencoder,
)


def test_batches_cover_every_image_once_per_epoch():
    X = torch.arange(10).float()
    batches = InMemoryBatches(X, 4, shuffle=True, seed=3)
    assert len(batches) == 3
    first = torch.cat(list(batches))
    assert sorted(first.tolist()) == list(range(10))
    batches.sampler.set_epoch(1)
    second = torch.cat(list(batches))
    assert sorted(second.tolist()) == list(range(10))
    assert not torch.equal(first, second)
    batches.sampler.set_epoch(0)
    assert torch.equal(torch.cat(list(batches)), first)


def test_unshuffled_batches_keep_order():
    X = torch.arange(7).float()
    assert [b.tolist() for b in InMemoryBatches(X, 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def _fit(data, tmp_path, name):
    settings = TrainSettings(
        max_epochs=2, batch_size=128, seed=7, accelerator="cpu", progress=False
    )
    model = init_autoencoder("fc", 2, 1e-3, seed=7)
    return fit_autoencoder(model, data, settings, tmp_path / name)


def test_same_seed_same_numbers(mnist_small, tmp_path):
    a, b = _fit(mnist_small, tmp_path, "a"), _fit(mnist_small, tmp_path, "b")
    assert a.best_val_loss == b.best_val_loss
    assert a.epochs == b.epochs == 2
    wa = FCAutoencoder.load_from_checkpoint(a.best_checkpoint).state_dict()
    wb = FCAutoencoder.load_from_checkpoint(b.best_checkpoint).state_dict()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)


def test_losses_are_logged_per_epoch(mnist_small, tmp_path):
    import csv

    _fit(mnist_small, tmp_path, "log")
    rows = list(csv.DictReader((tmp_path / "log" / "log" / "metrics.csv").open()))
    val = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    train = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    assert len(val) == 2 and len(train) == 2
    assert val[1] < val[0]


def test_gpu_where_there_is_none_is_refused():
    from latentbench.errors import ConfigError
    from latentbench.training import resolve_accelerator

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="no CUDA device; use --accelerator cpu"):
        resolve_accelerator("gpu")
    assert resolve_accelerator("auto") == "cpu"
