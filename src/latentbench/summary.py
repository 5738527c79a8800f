"""Per-layer tables of a model: names, types, parameters, input and output sizes."""

from __future__ import annotations

import dataclasses

import torch
from lightning.pytorch.utilities.model_summary import ModelSummary

from latentbench.constants import IMAGE_SHAPE
from latentbench.models import Autoencoder


@dataclasses.dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    params: int
    in_size: str
    out_size: str


def layer_table(model: Autoencoder) -> tuple[list[LayerRow], int]:
    """Every layer of ``model`` with its sizes for one input image, and the total.

    Sizes come from Lightning's ``ModelSummary`` run on a (1, 1, 28, 28) input.
    """
    model.example_input_array = torch.zeros(1, *IMAGE_SHAPE)
    summary = ModelSummary(model, max_depth=-1)
    rows = [
        LayerRow(name, kind, int(n), str(i), str(o))
        for name, kind, n, i, o in zip(
            summary.layer_names,
            summary.layer_types,
            summary.param_nums,
            summary.in_sizes,
            summary.out_sizes,
        )
    ]
    return rows, int(summary.total_parameters)
