"""The model card: README.md in every trained model directory, in the Hugging Face format.

YAML front matter (what the hub indexes: library, task, base model, data, metrics), then what a
reader needs to trust and use the model: its labels, the data per split, scores with the views
they were measured on, the frames it sees, the command that trained it, time and hardware, the
licence of the base weights, and how to load it. Training writes the card once, at the end;
`vidcls eval` on the test split rewrites only the test-scores section (between markers) and the
test entry of the front matter, so the card keeps the latest test figures.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
from dataclasses import fields
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import transformers
import yaml

from vidcls.data.discovery import DatasetIndex
from vidcls.models.loading import MODELING_FILES, PRESETS
from vidcls.models.pretrained import PRETRAINED
from vidcls.publish.markdown import markdown_table, percent
from vidcls.training.config import names_where
from vidcls.data.clip_spec import ClipSpec

if TYPE_CHECKING:
    from vidcls.evaluation.evaluate import EvaluationResult
    from vidcls.training.run_state import RunState
    from vidcls.training.config import TrainConfig

CARD_FILE = "README.md"
TEST_START, TEST_END = "<!-- vidcls:test-scores -->", "<!-- /vidcls:test-scores -->"
VALIDATION_VIEWS = "1 clip x 1 crop"  # training's validation: the centre clip, centre crop
# How a run was driven, not what it trained: left out of the reproducing command.
RUN_ONLY = names_where("reproduced", False)
# TrainConfig fields `vidcls train` has no option for; a run that changed one is shown as a Python call.
API_ONLY = names_where("cli", False)


def write_model_card(
    model_dir: str | Path, config: TrainConfig, index: DatasetIndex, spec: ClipSpec, state: RunState, device: torch.device,
    world_size: int = 1,
) -> Path:
    """Write README.md for the run that just finished (``state``: training's epoch bookkeeping;
    ``world_size``: the processes torchrun started, 1 without it)."""
    model_dir = Path(model_dir)
    base = base_model(config.model)
    data_name = index.root.name
    front = {
        "library_name": "transformers",
        "pipeline_tag": "video-classification",
        "tags": ["vidcls", "video-classification"],
        **({"base_model": base} if base else {}),
        "datasets": [data_name],
        "metrics": ["accuracy"],
        "model-index": [{"name": model_dir.name, "results": _validation_results(state, data_name)}],
    }
    sections = [
        f"# {model_dir.name}\n\n{_summary(config, index)}",
        "## Labels\n\n" + markdown_table(("id", "label"), list(enumerate(index.labels))),
        _data_section(index),
        _validation_section(state),
        f"## Test scores\n\n{TEST_START}\nNot measured yet: `vidcls eval {folder_name(config.output)} "
        f"{folder_name(config.data)}` writes them "
        f"here.\n{TEST_END}",
        _frames_section(spec),
        _training_section(config, state, device, world_size),
        f"## Licence\n\n{licence_note(config.model)}",
        _usage_section(folder_name(config.output), spec, modeling_file(model_dir)),
    ]
    card = model_dir / CARD_FILE
    card.write_text(_join(front, "\n\n".join(sections) + "\n"))
    return card


def add_search_section(model_dir: str | Path, search: dict) -> Path:
    """Say in the card what the recipe search (`training.recipe_search`) tried and why it kept this model."""
    card = Path(model_dir) / CARD_FILE
    rows = [
        (candidate["recipe"], f"`{folder_name(candidate['model'])}`",
         "n/a" if candidate["val_accuracy"] is None else percent(candidate["val_accuracy"]),
         f"{candidate['seconds']:.0f}" if candidate["outcome"] in ("tried", "kept") else "",
         candidate["outcome"] + (f"; stopped early: {candidate['stopped']}" if candidate.get("stopped") else ""))
        for candidate in search["tried"]
    ]
    section = (
        f"## Recipe search\n\n`vidcls train` without `--model` tried these recipes within its "
        f"{search['budget_minutes']:g}-minute budget and kept **{search['kept']}**: {search['why']}. "
        "The training command below reproduces the kept recipe alone.\n\n"
        + markdown_table(("recipe", "model", "val top-1", "seconds", "outcome"), rows)
    )
    text = card.read_text()
    card.write_text(text.replace("## Labels", f"{section}\n\n## Labels", 1))
    return card


def update_test_scores(model_dir: str | Path, result: EvaluationResult) -> Path | None:
    """Put a test-split evaluation into the card of ``model_dir``; None when there is nothing to update
    (another split, or a directory without a vidcls card)."""
    card = Path(model_dir) / CARD_FILE
    if result.split != "test" or not card.is_file():
        return None
    front, body = split_front_matter(card.read_text())
    if TEST_START not in body or TEST_END not in body:
        return None
    before, rest = body.split(TEST_START, 1)
    after = rest.split(TEST_END, 1)[1]
    body = f"{before}{TEST_START}\n{_test_scores(result)}\n{TEST_END}{after}"
    for entry in front.get("model-index", []):
        entry["results"] = [r for r in entry["results"] if r["dataset"].get("split") != "test"]
        entry["results"].append(_result_entry(
            Path(result.data).name, "test", result.top1, f"test top-1 ({result.clips} clips x {result.crops} crops)",
        ))
    card.write_text(_join(front, body))
    return card


def split_front_matter(text: str) -> tuple[dict, str]:
    """(YAML front matter as a dict, the Markdown after it); ({}, text) when there is none."""
    if not text.startswith("---\n"):
        return {}, text
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front) or {}, body.lstrip("\n")


def _join(front: dict, body: str) -> str:
    return f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n\n{body}"


def base_model(name: str) -> str | None:
    """The hub id the weights were fine-tuned from: the name itself, or a local base model's own base."""
    if name in PRESETS or name in PRETRAINED:
        return None
    local = Path(name).expanduser()
    if not local.is_dir():
        return name
    card = local / CARD_FILE
    return split_front_matter(card.read_text())[0].get("base_model") if card.is_file() else None


def licence_note(name: str) -> str:
    """Whose licence the weights carry: none for a preset, the base model's when fine-tuned."""
    if name in PRESETS:
        return (f"Trained from random initialisation (preset `{name}`): no base-model licence applies; the "
                "licences of the training videos do.")
    if name in PRETRAINED:
        return f"Fine-tuned from `{name}`: {PRETRAINED[name].licence}"
    if Path(name).expanduser().is_dir():
        return f"Fine-tuned from the local model `{name}`: its licence applies to these weights too."
    note = (f"Fine-tuned from [{name}](https://huggingface.co/{name}): these weights derive from it, so its licence "
            "applies; read it on that model's card before using or sharing them.")
    if name.startswith("MCG-NJU/"):
        note += " MCG-NJU's VideoMAE checkpoints are published under CC BY-NC 4.0 (no commercial use)."
    return note


def launcher(world_size: int) -> list[str]:
    """The torchrun words that start as many processes per machine as this run had (none for one)."""
    if world_size == 1:
        return []
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    nodes = ["--standalone"] if per_node == world_size else ["--nnodes", str(world_size // per_node)]
    return ["torchrun", *nodes, "--nproc-per-node", str(per_node), "-m"]


def folder_name(path: str | Path) -> str:
    """How the card names a folder: as the user gave it when relative, by its name when absolute;
    never by this machine's absolute path, since the card is published with the model."""
    return Path(path).name if Path(path).is_absolute() else str(path)


def training_command(config: TrainConfig, world_size: int = 1) -> str:
    """What reproduces the run: `vidcls train` with the options that differ from the defaults
    (under torchrun when it ran there), or Python code when a setting the CLI does not expose was
    changed."""
    changed = {
        f.name: getattr(config, f.name) for f in fields(config)
        if f.name not in RUN_ONLY and getattr(config, f.name) != f.default
    }
    if any(name in API_ONLY for name in changed):
        folders = [repr(folder_name(config.data)), repr(folder_name(config.output))]
        arguments = ", ".join(folders + [f"{k}={v!r}" for k, v in changed.items()])
        return f"import vidcls\n\nvidcls.train({arguments})"
    words = [*launcher(world_size), "vidcls", "train", folder_name(config.data), "--output", folder_name(config.output)]
    for name, value in changed.items():
        option = "--" + name.replace("_", "-")
        words += [option] if value is True else ["--no-" + option[2:]] if value is False else [option, str(value)]
    return shlex.join(words)


def hardware(device: torch.device) -> str:
    """The GPU's name, or the CPU's architecture, vector extensions and core count."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    machine = platform.processor() or platform.machine()
    return f"CPU: {machine} ({torch.backends.cpu.get_cpu_capability()}), {os.cpu_count()} cores"


def _summary(config: TrainConfig, index: DatasetIndex) -> str:
    origin = (f"trained from scratch (preset `{config.model}`)" if config.model in PRESETS
              else f"fine-tuned from `{config.model}`")
    return (f"A video classifier for {len(index.labels)} classes, {origin} on `{index.root.name}` with "
            "vidcls. It is an ordinary transformers model directory.")


def _data_section(index: DatasetIndex) -> str:
    splits = [name for name, records in index.splits.items() if records]
    counts = {name: _class_counts(index.splits[name]) for name in splits}
    rows = [(label, *(counts[name].get(label, 0) for name in splits)) for label in index.labels]
    rows.append(("**total**", *(len(index.splits[name]) for name in splits)))
    left_out = f" {len(index.bad_files)} unreadable files were left out." if index.bad_files else ""
    return (f"## Data\n\n`{index.root.name}` ({index.layout} layout), videos per class and split.{left_out}\n\n"
            + markdown_table(("class", *splits), rows))


def _class_counts(records) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.label] = counts.get(record.label, 0) + 1
    return counts


def _validation_results(state: RunState, data_name: str) -> list[dict]:
    accuracy = state.best_val_accuracy
    if accuracy is None:
        return []
    return [_result_entry(data_name, "validation", accuracy, f"val top-1 ({VALIDATION_VIEWS})")]


def _result_entry(data_name: str, split: str, accuracy: float, label: str) -> dict:
    """One model-index result, as the hub reads it."""
    return {
        "task": {"type": "video-classification", "name": "Video Classification"},
        "dataset": {"name": data_name, "type": data_name, "split": split},
        "metrics": [{"type": "accuracy", "value": round(float(accuracy), 4), "name": label}],
    }


def _validation_section(state: RunState) -> str:
    accuracy = state.best_val_accuracy
    if accuracy is None:
        return "## Validation scores\n\nNo validation split: the saved weights are those of the last epoch."
    rows = [
        ("top-1 accuracy", percent(accuracy)),
        ("views per video", f"{VALIDATION_VIEWS} (the centre clip)"),
        ("saved epoch", f"{state.best_epoch} of {state.epoch} (the best `val_accuracy_smoothed` in "
                        "metrics.jsonl: val accuracy averaged with the epochs just before; the later on a tie)"),
    ]
    return "## Validation scores\n\nMeasured during training.\n\n" + markdown_table(("", "value"), rows)


def _test_scores(result: EvaluationResult) -> str:
    top5 = "n/a (5 classes or fewer)" if result.top5 is None else percent(result.top5)
    rows = [
        ("data", f"`{folder_name(result.data)}` (split {result.split})"),
        ("videos scored", result.num_videos),
        ("views per video", f"{result.clips} clips spread over the video x {result.crops} crops"),
        ("top-1 accuracy", percent(result.top1)),
        ("top-5 accuracy", top5),
        ("mean class accuracy", percent(result.mean_class_accuracy)),
        ("files that failed", len(result.failed)),
        ("measured", datetime.date.today().isoformat()),
    ]
    from vidcls.evaluation.report import class_table  # only once there is a test score: training never needs it

    return markdown_table(("", "value"), rows) + "\n\n" + class_table(result, result.labels)


def _frames_section(spec: ClipSpec) -> str:
    if spec.sampling == "segment":
        taken = f"one from each of {spec.num_frames} equal parts of the whole video (segment sampling)"
    else:
        taken = f"every {spec.sample_rate}th frame, a run of {spec.num_frames * spec.sample_rate} frames (dense sampling)"
    rows = [
        ("frames per clip", spec.num_frames),
        ("frames taken", taken),
        *_size_rows(spec),
        ("mean / std", f"{list(spec.mean)} / {list(spec.std)}"),
        ("`vidcls predict` views", f"{spec.clips} clips spread over the whole video x 1 {_crop_name(spec)}"),
    ]
    return ("## Frames the model sees\n\nSaved in `config.json` (`vidcls`) and the processors "
            "(`video_preprocessor_config.json`, `preprocessor_config.json`).\n\n"
            + markdown_table(("", "value"), rows))


def _size_rows(spec: ClipSpec) -> list[tuple[str, str]]:
    if spec.frame_size:
        return [("frames resized to", f"{spec.frame_size[1]} x {spec.frame_size[0]} px (width x height), whole, uncropped")]
    return [("short side resized to", f"{spec.resize_short_side} px"), ("crop", f"{spec.crop_size} x {spec.crop_size} px")]


def _crop_name(spec: ClipSpec) -> str:
    return "whole frame" if spec.frame_size else "centre crop"


def _training_section(config: TrainConfig, state: RunState, device: torch.device, world_size: int) -> str:
    seconds = sum(row["epoch_seconds"] for row in state.history)
    rows = [
        ("epochs run", state.epoch),
        ("why it stopped there", state.stopped or "n/a"),
        ("training time", f"{seconds / 60:.1f} min (training passes; validation not counted)"),
        ("hardware", hardware(device) + (f"; {world_size} processes (torchrun)" if world_size > 1 else "")),
        ("software", f"vidcls {version('vidcls')}, torch {torch.__version__}, transformers {transformers.__version__}"),
    ]
    command = training_command(config, world_size)
    language = "python" if command.startswith("import ") else "bash"
    return (f"## Training\n\n```{language}\n{command}\n```\n\nEvery setting, resolved: "
            "`train_args.json`; loss and accuracy per epoch: `metrics.jsonl`, `training_curve.png`.\n\n"
            + markdown_table(("", "value"), rows))


def modeling_file(model_dir: Path) -> str | None:
    """The architecture's code shipped in the folder (named in its auto_map), if any."""
    return next((name for name in MODELING_FILES if (model_dir / name).is_file()), None)


def _usage_section(model: str, spec: ClipSpec, code: str | None) -> str:
    trust = ", trust_remote_code=True" if code else ""
    why = (f" (the architecture's code, `{code}`, ships in this folder; read it before trusting it)"
           if code else "")
    caveat = ("" if spec.sampling == "segment" else
              "\nThis model was trained on dense clips; the pipeline spreads its frames over the whole video, "
              "so `vidcls predict` scores it better.\n")
    return f"""## How to use

With transformers{why}: the saved video processor reads {spec.num_frames} frames spread over the whole video,
as the model was trained, so no sampling arguments are needed.
{caveat}
```python
from transformers import pipeline

classifier = pipeline("video-classification", model="{model}"{trust})  # or the hub id it was pushed to
classifier("video.mp4")
```

With vidcls ({spec.clips} clip{"s averaged" if spec.clips > 1 else ""}, sampling read from the model):

```bash
vidcls predict {model} video.mp4 --top-k 3
```

```python
import vidcls

vidcls.predict("{model}", ["video.mp4"], top_k=3)
```"""
