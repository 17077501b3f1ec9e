"""Batch prediction and evaluation on Ray Data: many files, many machines, resumable.

Ray does the scheduling; this module only says what runs where. A manifest (a glob, or a text
file of paths, local or in object storage that every node can read) becomes a Ray dataset of
paths; CPU tasks decode and preprocess each file with `data.views.video_views` (the views
`vidcls predict` makes); a pool of actors, one model copy each (a GPU each when the cluster has
GPUs), scores them with `VideoClassifier.score`; the driver turns probabilities into rows with
the classifier's own `postprocess` and `timeline`. A file that cannot be read is a row with the
reason, as in `vidcls predict`.

Predictions go to OUTPUT, a directory of Parquet parts (pandas and pyarrow read it as one
table). The driver writes a part every ``part_size`` rows as results stream in, each under a
hidden temporary name then moved to ``part-NNNNN.parquet``, so a killed run leaves only whole
parts; a rerun reads the paths those parts hold and scores only the rest. The driver writes the
parts, not Ray's ``write_parquet``, because Ray writes a block's file only when the block is
done and names files per run, which makes "skip what is already written" unreliable.

ray is an optional extra, imported only when this engine runs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np
import torch

from vidcls.errors import DatasetError, OutputExistsError, VideoReadError, VidclsError
from vidcls.data.discovery import VideoRecord
from vidcls.defaults import RAY_PART_SIZE, RAY_SCORE_BATCH
from vidcls.inference.prediction import VideoClassifier
from vidcls.data.views import video_views
from vidcls.data.clip_spec import ClipSpec
from vidcls.inference.options import ViewOptions

INSTALL_HINT = "install the ray extra: pip install -e '.[ray]'"
GLOB_CHARS = "*?["
MAX_BLOCKS = 1000  # paths per block grow past this many files, so Ray's per-block overhead stays small
DECODE_BATCH = 4  # files per decode call
# A model copy's working set: torch, decoder and model, with room (benchmarks/README.md, "Figures behind defaults").
# Requesting it also keeps Ray from fusing the decode tasks into the actors (it fuses stages whose
# resource requests are equal), so files decode in parallel CPU tasks.
ACTOR_MEMORY = 3 << 29  # 1.5 GiB
SETTINGS_FILE = "_vidcls_predict.json"  # readers skip names starting with "_" or "."
PART_PREFIX = "part-"


def import_ray():
    """The ray module (with Ray Data), or an error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise VidclsError(f"the Ray engine needs ray, which is not installed: {INSTALL_HINT}") from error
    return ray


def connect(address: str | None = None):
    """Ray, connected to ``address`` (or RAY_ADDRESS) when given, else to a Ray instance started
    here on this machine; a session already connected (a test's, a notebook's) is kept."""
    ray = import_ray()
    if not ray.is_initialized():
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address)
        else:
            ray.init(address="local", include_dashboard=False)  # "local": never a cluster found on this machine
    return ray


def _is_uri(path: str) -> bool:
    return "://" in path


def read_manifest(manifest: str) -> list[str]:
    """Video paths from a glob or a text file (one path a line; blank lines and '#' lines skipped),
    each once, in order. Local paths are made absolute (relative ones from the current folder),
    so a rerun from elsewhere recognises what was written."""
    if any(c in manifest for c in GLOB_CHARS):
        paths = _glob_uri(manifest) if _is_uri(manifest) else _glob_local(manifest)
        if not paths:
            raise DatasetError(f"{manifest}: the pattern matches no file")
    else:
        lines = (line.strip() for line in _read_text(manifest).splitlines())
        paths = [line for line in lines if line and not line.startswith("#")]
        if not paths:
            raise DatasetError(f"{manifest}: the manifest lists no paths (one path a line)")
    return list(dict.fromkeys(p if _is_uri(p) else os.path.abspath(os.path.expanduser(p)) for p in paths))


def _glob_local(pattern: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))


def _glob_uri(pattern: str) -> list[str]:
    """Files under the pattern's fixed prefix whose rest matches (fnmatch: ``*`` also crosses '/')."""
    from pyarrow import fs as pafs

    scheme, rest = pattern.split("://", 1)
    base = rest[: min(rest.find(c) for c in GLOB_CHARS if c in rest)].rpartition("/")[0]
    try:
        filesystem, base_path = pafs.FileSystem.from_uri(f"{scheme}://{base}")
        found = filesystem.get_file_info(pafs.FileSelector(base_path, recursive=True))
    except (OSError, ValueError) as error:
        raise DatasetError(f"{pattern}: could not list {scheme}://{base}: {error}") from error
    relative = rest[len(base):]
    return sorted(
        f"{scheme}://{base}{info.path[len(base_path):]}" for info in found
        if info.type == pafs.FileType.File and fnmatch.fnmatchcase(info.path[len(base_path):], relative)
    )


def _read_text(manifest: str) -> str:
    try:
        if not _is_uri(manifest):
            return Path(manifest).expanduser().read_text()
        from pyarrow import fs as pafs

        filesystem, path = pafs.FileSystem.from_uri(manifest)
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode()
    except (OSError, ValueError) as error:
        raise DatasetError(f"{manifest}: could not read the manifest ({error}); pass a text file of paths or a glob") from error


@contextlib.contextmanager
def local_file(path: str) -> Iterator[str]:
    """``path`` itself, or for an object-storage URI a temporary local copy (the decoder seeks)."""
    if not _is_uri(path):
        yield path
        return
    from pyarrow import fs as pafs

    with tempfile.NamedTemporaryFile(suffix=PurePosixPath(path).suffix) as copy:
        try:
            filesystem, remote = pafs.FileSystem.from_uri(path)
            with filesystem.open_input_stream(remote) as source:
                shutil.copyfileobj(source, copy)
        except (OSError, ValueError) as error:
            raise VideoReadError(path, f"could not fetch the file: {error}") from error
        copy.flush()
        yield copy.name


def decode_views(batch: dict, spec: ClipSpec, options: ViewOptions) -> dict:
    """CPU task: each file's uint8 views and window views (`data.views.video_views`, as `vidcls
    predict` makes them), or the reason it cannot be read (empty views)."""
    clip_shape = (spec.num_frames, 3, *spec.input_size)
    options = options.for_model(spec)
    out = {name: [] for name in ("path", "error", "duration", "views", "windows", "spans")}
    for path in batch["path"]:
        try:
            with local_file(path) as local:  # windows are decoded as they are iterated: inside, while the copy exists
                views = video_views(local, spec, clips=options.clips, crops=options.crops, window=options.window)
                batches = list(views.windows or [])
            error, duration, whole = "", views.info.duration, views.views.numpy()
            empty = np.zeros((0, 1, *clip_shape), np.uint8)
            windows = np.concatenate([batch_clips.numpy() for _, batch_clips in batches]) if batches else empty
            spans = np.array([span for batch_spans, _ in batches for span in batch_spans], np.float64).reshape(-1, 2)
        except VideoReadError as failure:
            error, duration, whole = failure.reason, 0.0, np.zeros((0, *clip_shape), np.uint8)
            windows, spans = np.zeros((0, 1, *clip_shape), np.uint8), np.zeros((0, 2))
        for name, value in zip(out, (path, error, duration, whole, windows, spans)):
            out[name].append(value)
    return out


class ViewScorer:
    """Actor: one model copy, loaded once; the readable videos of a batch in one forward (their
    windows, when asked for, one video at a time), through `VideoClassifier.score`."""

    def __init__(self, model: str, device: str | None) -> None:
        self.classifier = VideoClassifier(model, device)

    def __call__(self, batch: dict) -> dict:
        classes = len(self.classifier.labels)
        rows = len(batch["path"])
        probabilities = [np.zeros(classes, np.float32)] * rows
        window_probabilities = [np.zeros((0, classes), np.float32)] * rows
        good = [i for i in range(rows) if not batch["error"][i]]
        if good:
            scores = self.classifier.score(torch.from_numpy(np.stack([batch["views"][i] for i in good])))
            for i, score in zip(good, scores.numpy()):
                probabilities[i] = score
                if len(batch["windows"][i]):
                    window_probabilities[i] = self.classifier.score(torch.tensor(batch["windows"][i])).numpy()
        kept = {name: batch[name] for name in ("path", "error", "duration", "spans")}
        return {**kept, "probabilities": probabilities, "window_probabilities": window_probabilities}


def score_paths(
    model: str, spec: ClipSpec, paths: list[str], options: ViewOptions, *,
    model_copies: int | None, device: str | None, batch_size: int = RAY_SCORE_BATCH,
) -> Iterator[dict]:
    """Per file, as each finishes (no fixed order): path, error ("" when read), duration,
    probabilities (classes,) on ``options``' views and window_probabilities (windows, classes)
    with their spans.
    ``model_copies`` Ray actors run the model (default: one per GPU of the cluster, else 1); call `connect` first."""
    ray = import_ray()
    resources = ray.cluster_resources()
    gpus = 0 if (device or "cuda").startswith("cpu") else int(resources.get("GPU", 0))
    model_copies = model_copies or max(gpus, 1)
    if model_copies >= resources.get("CPU", 0):  # each copy holds a CPU: none would be left to decode
        raise VidclsError(f"{model_copies} model copies leave none of the cluster's {resources.get('CPU', 0):g} CPUs to "
                          "decode videos; use fewer --model-copies")
    dataset = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=min(len(paths), MAX_BLOCKS))
    dataset = dataset.map_batches(
        decode_views, fn_kwargs=dict(spec=spec, options=options), batch_size=DECODE_BATCH,
        num_cpus=1,
    )
    dataset = dataset.map_batches(
        ViewScorer, fn_constructor_kwargs=dict(model=model, device=device), batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=model_copies), num_gpus=1 if gpus else 0,
        memory=ACTOR_MEMORY,
    )
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for i in range(len(batch["path"])):
            yield {name: column[i] for name, column in batch.items()}


# ---- batch prediction: rows, Parquet parts, resume ----


def prediction_row(classifier: VideoClassifier, scored: dict, options: ViewOptions) -> dict:
    """A `score_paths` result as a Parquet row: the labels and scores `vidcls predict` gives."""
    if scored["error"]:
        return {"path": str(scored["path"]), "error": str(scored["error"])}
    top = classifier.postprocess(torch.tensor(scored["probabilities"]), options)
    row = {
        "path": str(scored["path"]), "error": None, "duration": float(scored["duration"]),
        "label": top[0]["label"], "score": top[0]["score"],
        "top_k_labels": [t["label"] for t in top], "top_k_scores": [t["score"] for t in top],
    }
    if options.window:
        spans = [tuple(span) for span in scored["spans"].tolist()]
        row["timeline"] = json.dumps(classifier.timeline(torch.tensor(scored["window_probabilities"]), spans, options))
    return row


def prediction_schema():
    """The Parquet columns, fixed, so a part of failures only has the same types as the others."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("error", pa.string()), ("duration", pa.float64()), ("label", pa.string()),
        ("score", pa.float64()), ("top_k_labels", pa.list_(pa.string())), ("top_k_scores", pa.list_(pa.float64())),
        ("timeline", pa.string()),
    ])


class PartStore:
    """OUTPUT as a directory of Parquet parts, local or in object storage (pyarrow's file systems)."""

    def __init__(self, output: str, settings: dict) -> None:
        from pyarrow import fs as pafs

        target = output if _is_uri(output) else os.path.abspath(os.path.expanduser(output))
        self.fs, self.root = pafs.FileSystem.from_uri(target)
        self.fs.create_dir(self.root, recursive=True)
        self._check_settings(output, settings)
        self.parts = self._existing_parts()

    def _check_settings(self, output: str, settings: dict) -> None:
        """A rerun must use the settings the existing rows were made with, or rows would disagree."""
        path = f"{self.root}/{SETTINGS_FILE}"
        if self.fs.get_file_info(path).type.name == "NotFound":
            with self.fs.open_output_stream(path) as stream:
                stream.write(json.dumps(settings, indent=2).encode())
            return
        with self.fs.open_input_stream(path) as stream:
            saved = json.loads(stream.read())
        if saved != settings:
            changed = ", ".join(f"{k}: {saved.get(k)!r} then, {v!r} now" for k, v in settings.items() if saved.get(k) != v)
            raise OutputExistsError(f"{output} holds predictions made with other settings ({changed}); "
                                    "pass another --output, or remove it to start again")

    def _existing_parts(self) -> list[str]:
        """Whole parts; temporary files of a killed run are removed."""
        from pyarrow import fs as pafs

        parts = []
        for info in self.fs.get_file_info(pafs.FileSelector(self.root)):
            if info.base_name.startswith(f".{PART_PREFIX}"):
                self.fs.delete_file(info.path)
            elif info.base_name.startswith(PART_PREFIX):
                parts.append(info.path)
        return sorted(parts)

    def written_paths(self) -> set[str]:
        import pyarrow.parquet as pq

        return {p for part in self.parts for p in pq.read_table(part, columns=["path"], filesystem=self.fs)["path"].to_pylist()}

    def write(self, rows: list[dict]) -> None:
        """One part, whole or not at all: written under a hidden name, then moved into place."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = f"{PART_PREFIX}{len(self.parts):05d}.parquet"
        temporary, final = f"{self.root}/.{name}.tmp", f"{self.root}/{name}"
        pq.write_table(pa.Table.from_pylist(rows, schema=prediction_schema()), temporary, filesystem=self.fs)
        self.fs.move(temporary, final)
        self.parts.append(final)


@dataclass
class BatchPredictionSummary:
    """What one `predict_to_parquet` run did."""

    output: str
    total: int  # paths in the manifest
    skipped: int  # already in OUTPUT from an earlier run
    written: int  # rows written by this run
    failed: int  # of those, files that could not be read
    seconds: float

    @property
    def videos_per_s(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


def predict_to_parquet(
    model: str, manifest: str, output: str, options: ViewOptions = ViewOptions(), *, model_copies: int | None = None,
    part_size: int = RAY_PART_SIZE, batch_size: int | None = None, device: str | None = None,
    address: str | None = None,
) -> BatchPredictionSummary:
    """Predict every file of ``manifest`` on Ray into the Parquet directory ``output`` (see the
    module docstring); files already there are skipped. Columns: path, error (null, or why the file
    could not be read), duration, label, score, top_k_labels, top_k_scores, timeline (JSON, with
    ``options.window``)."""
    import_ray()  # before any work, when the extra is missing
    paths = read_manifest(manifest)
    settings = dict(model=model, **asdict(options))
    store = PartStore(output, settings)
    done = store.written_paths()
    todo = [p for p in paths if p not in done]
    started, written, failed, rows = time.perf_counter(), 0, 0, []
    if todo:
        connect(address)
        classifier = VideoClassifier(model, "cpu")  # the driver's copy: labels and clip settings
        scored = score_paths(
            model, classifier.spec.sampled_as(options.sampling), todo, options, model_copies=model_copies, device=device,
            batch_size=batch_size or RAY_SCORE_BATCH,
        )
        for result in scored:
            rows.append(prediction_row(classifier, result, options))
            failed += bool(rows[-1]["error"])
            if len(rows) >= part_size:
                store.write(rows)
                written, rows = written + len(rows), []
        if rows:
            store.write(rows)
            written += len(rows)
    return BatchPredictionSummary(output, len(paths), len(paths) - len(todo), written, failed, time.perf_counter() - started)


# ---- evaluation ----


def score_records(
    model: str, spec: ClipSpec, records: list[VideoRecord], options: ViewOptions, *, model_copies: int | None = None,
    batch_size: int = RAY_SCORE_BATCH, device: str | None = None, address: str | None = None,
) -> tuple[torch.Tensor, list[int], list[dict]]:
    """What `evaluation.evaluate.score_videos` returns, computed on Ray: probabilities of the readable videos
    in ``records`` order, their positions, and the failures ({"path", "reason"}) in that order."""
    connect(address)
    position = {str(record.path): i for i, record in enumerate(records)}
    scored, failed = {}, {}
    rows = score_paths(
        model, spec, list(position), options, model_copies=model_copies, device=device, batch_size=batch_size
    )
    for row in rows:
        at = position[row["path"]]
        if row["error"]:
            failed[at] = {"path": row["path"], "reason": str(row["error"])}
        else:
            scored[at] = torch.tensor(row["probabilities"])
    positions = sorted(scored)
    probabilities = torch.stack([scored[i] for i in positions]) if scored else torch.empty(0, 0)
    return probabilities, positions, [failed[i] for i in sorted(failed)]
