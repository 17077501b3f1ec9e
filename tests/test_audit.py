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
from vidcls.audit.outliers import find_outliers
from vidcls.audit.signatures import SignatureCache, compute_signatures, thumbnail_signature
from vidcls.cli import app
from vidcls.data.discovery import discover_dataset
from vidcls.data.decode import read_frames
from vidcls.data.probe import probe_video
from vidcls.inference.options import ViewOptions

runner = CliRunner()
CLASSES = ("MoveLeft", "MoveRight", "MoveUp")


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
    assert leakage.held == ({} if copy_split == "test" else {"test": {copy_split: 1}})


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
