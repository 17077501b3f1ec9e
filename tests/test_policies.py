"""Policies that decide a run without running it: split sizes and what a resume keeps. Pure and fast."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import logging
from pathlib import Path

import pytest

import vidcls
from vidcls.errors import VidclsError
from vidcls.data.discovery import _split_counts
from vidcls.training.loop import TrainConfig, resumed_config, write_train_args
from vidcls.inference.options import ViewOptions


@pytest.mark.parametrize(("units", "val_ratio", "test_ratio", "expected"), [
    (20, 0.1, 0.2, (2, 4)),  # the ratios, rounded
    (5, 0.1, 0.1, (1, 1)),  # a non-zero ratio gets at least one unit
    (3, 0.3, 0.3, (1, 1)),  # train keeps one
    (2, 0.3, 0.3, (1, 0)),  # too few to give each split one: test gives way first, train keeps one
    (10, 0.0, 0.2, (0, 2)),  # a zero ratio gets none
])
def test_split_counts(units, val_ratio, test_ratio, expected):
    assert _split_counts(units, val_ratio, test_ratio) == expected


def test_every_split_count_leaves_train_a_unit():
    for units in range(2, 30):
        for val_ratio in (0.0, 0.1, 0.33, 0.45):
            for test_ratio in (0.0, 0.1, 0.33, 0.45):
                val, test = _split_counts(units, val_ratio, test_ratio)
                assert val + test < units and val >= 0 and test >= 0


def test_a_resume_keeps_the_run_s_settings_and_takes_only_where_it_runs(tmp_path, caplog):
    original = TrainConfig(data="old", output=str(tmp_path), epochs=4, lr=0.01, seed=5, workers=2)
    write_train_args(tmp_path, original, ["A", "B"], resumed_after=None)
    asked = TrainConfig(data="new", output=str(tmp_path), epochs=9, workers=0, resume=True, device="cpu")
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        resumed = resumed_config(tmp_path, asked)
    assert (resumed.epochs, resumed.lr, resumed.seed) == (4, 0.01, 5)  # how the run computes: the original's
    assert (resumed.data, resumed.workers, resumed.resume, resumed.device) == ("new", 0, True, "cpu")
    assert "--epochs" in caplog.text and "--seed" not in caplog.text  # a setting asked for and ignored is named


def test_a_resume_asking_for_nothing_new_warns_of_nothing(tmp_path, caplog):
    original = TrainConfig(data="d", output=str(tmp_path), epochs=3)
    write_train_args(tmp_path, original, ["A", "B"], resumed_after=None)
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        resumed = resumed_config(tmp_path, TrainConfig(data="d", output=str(tmp_path), resume=True))
    assert resumed.epochs == 3 and caplog.text == ""


def test_train_options_take_their_defaults_and_help_from_train_config():
    from dataclasses import MISSING, fields

    from typer.main import get_command

    import vidcls.cli  # noqa: F401  (registers every command)
    from vidcls.cli._app import app
    from vidcls.training.config import TrainConfig

    params = {param.name: param for param in get_command(app).commands["train"].params}
    settings = {f.name: f for f in fields(TrainConfig)}
    exposed = {name for name, f in settings.items() if f.metadata["cli"]}
    assert exposed <= set(params), exposed - set(params)  # every setting with an option has one
    shared = {"device": None, "leakage_check": "on"}  # options several commands share, with their own help
    for name in exposed:
        default = settings[name].default
        if name in shared:
            assert params[name].default == shared[name], name
            continue
        assert params[name].default == (None if default is MISSING else default), name
        assert params[name].help == settings[name].metadata["help"], name


@pytest.mark.parametrize("bad", [dict(clips=0), dict(crops=2), dict(window=0.0), dict(sampling="random"), dict(top_k=0)])
def test_view_options_refuse_what_no_job_can_score(bad):
    with pytest.raises(VidclsError, match=next(iter(bad))):
        ViewOptions(**bad)


def test_keyword_options_are_routed_once_into_view_options_and_the_rest():
    views, rest = ViewOptions.take_from({"clips": 2, "top_k": 1, "batch_size": 8, "device": "cpu"})
    assert views == ViewOptions(clips=2, top_k=1) and rest == {"batch_size": 8, "device": "cpu"}
    with pytest.raises(VidclsError, match="not both"):
        vidcls.predict("unused-model", [], options=ViewOptions(clips=2), clips=3)


def test_scoring_jobs_take_one_options_object_not_loose_view_settings():
    from vidcls.evaluation.evaluate import evaluate, score_videos
    from vidcls.inference.prediction import VideoClassifier, iter_predict, predict
    from vidcls.inference.ray_engine import decode_views, predict_to_parquet, prediction_row, score_paths, score_records
    from vidcls.serve.predictor import Predictor

    jobs = [
        evaluate, score_videos, iter_predict, predict, decode_views, predict_to_parquet, prediction_row, score_paths,
        score_records, Predictor.predict, VideoClassifier.preprocess, VideoClassifier.postprocess,
        VideoClassifier.timeline, VideoClassifier.score_windows, VideoClassifier.predict,
        VideoClassifier.predict_views, VideoClassifier.predict_files,
    ]
    loose = {field.name for field in dataclasses.fields(ViewOptions)}
    for job in jobs:
        assert not loose & set(inspect.signature(job).parameters), job.__qualname__


def _import_statements(node: ast.AST, in_functions: bool):
    """The import statements in ``node``'s own body or, with ``in_functions``, anywhere under it (in
    functions, methods, branches); never those under ``if TYPE_CHECKING:``, which load nothing."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif in_functions and not (isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING"):
            yield from _import_statements(child, in_functions)


def _module_imports(in_functions: bool = False) -> dict[str, set[str]]:
    """vidcls module -> the vidcls modules it imports when it is imported or, with ``in_functions``,
    also when its functions run (not under TYPE_CHECKING)."""
    root = Path(vidcls.__file__).parent
    graph = {}
    for path in root.rglob("*.py"):
        name = ".".join(("vidcls", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        graph[name] = set()
        for node in _import_statements(ast.parse(path.read_text()), in_functions):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidcls"):
                graph[name].add(node.module)
                graph[name].update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name.startswith("vidcls"))
    return {name: {m for m in imports if m in graph and m != name} for name, imports in graph.items()}


def test_no_module_imports_itself_through_others():
    """Layers only point down: no circle of imports, those inside functions included (a function-level
    import hides a circle from import time, not from the design)."""
    graph = _module_imports(in_functions=True)
    for start in graph:
        seen, paths = set(), [[start, module] for module in graph[start]]
        while paths:
            path = paths.pop()
            assert path[-1] != start, " -> ".join(path)
            if path[-1] not in seen:
                seen.add(path[-1])
                paths.extend([*path, module] for module in graph[path[-1]])


def test_the_trainer_loads_no_evaluation_and_subpackages_load_nothing():
    graph, loaded, stack = _module_imports(), set(), ["vidcls.training.run"]
    while stack:  # everything importing the trainer imports, with the packages on the way
        module = stack.pop()
        if module not in loaded:
            loaded.add(module)
            parents = [module.rsplit(".", n)[0] for n in range(1, module.count("."))]
            stack.extend([*graph.get(module, ()), *(p for p in parents if p in graph)])
    assert "vidcls.data.decode" in loaded  # the walk reaches the bottom layer
    assert not [m for m in loaded if m.startswith("vidcls.evaluation")]
    root = Path(vidcls.__file__).parent
    for init in root.glob("*/__init__.py"):
        if init.parent.name != "cli":  # the CLI's package registers its commands
            assert not [n for n in ast.parse(init.read_text()).body if not isinstance(n, ast.Expr)], init


def test_workers_means_loader_processes_in_every_command():
    from typer.main import get_command

    import vidcls.cli  # noqa: F401  (registers every command)
    from vidcls.cli._app import app

    commands = get_command(app).commands
    with_workers = {name for name, command in commands.items() if any(p.name == "workers" for p in command.params)}
    assert {"train", "eval", "audit"} <= with_workers
    for name in with_workers:
        (param,) = [p for p in commands[name].params if p.name == "workers"]
        assert "loader processes" in param.help.lower(), name
    assert any(p.name == "model_copies" for p in commands["predict"].params)
    assert any(p.name == "processes" for p in commands["serve"].params)
