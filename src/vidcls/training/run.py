"""`train`: the run a `TrainConfig` asks for, the linear probe (``freeze_backbone``), the recipe search
(no ``model``) or the loop.

It sits above them, so the probe shares the loop's bookkeeping (`training.loop`: output folder,
train_args.json, the result) without the loop importing the probe back.
"""

from __future__ import annotations

from vidcls.inference.forward import pick_device
from vidcls.training import distributed
from vidcls.training.config import TrainConfig
from vidcls.training.linear_probe import train_linear_probe
from vidcls.training.loop import TrainResult, train_all_layers
from vidcls.training.recipe_search import search


def train(config: TrainConfig) -> TrainResult:
    """Run a training job end to end (see `training.loop`), in one process or in each process a
    launcher started."""
    with distributed.process_group(pick_device(config.device)) as processes:
        if config.freeze_backbone:
            return train_linear_probe(config, processes)
        if config.model is None and not config.resume:  # a resume reads the kept recipe's model from train_args.json
            return search(config, processes)
        return train_all_layers(config, processes)
