"""`transformers.Trainer` on vidcls data: the datasets, collator and metrics it takes, and a folder that
`vidcls eval`, `vidcls predict` and `transformers.pipeline` read after `Trainer.train()`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import CLASSES
from videos import moving_square, write_video
import vidcls
from vidcls.data.clip_spec import ClipSpec
from vidcls.errors import OutputExistsError
from vidcls.models.saving import video_processor_for
from vidcls.training.hf_trainer import ClipCollator, compute_metrics


def test_compute_metrics_scores_logits_as_vidcls_eval_does():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, top_k_accuracy_score
    from transformers import EvalPrediction

    logits = np.eye(6)[[0, 1, 2, 2, 4, 4]] + 0.1 * np.arange(6)  # ranks after the first: 5, 4, ... 0 last
    labels = np.array([0, 1, 2, 3, 0, 5])  # no class 4; the fifth video's class is ranked last
    metrics = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    predicted = logits.argmax(-1)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted)) == pytest.approx(0.5)
    assert metrics["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert metrics["top5_accuracy"] == pytest.approx(top_k_accuracy_score(labels, logits, k=5, labels=range(6)))
    assert metrics["top5_accuracy"] == pytest.approx(5 / 6)


def test_the_collator_gives_the_pixels_the_pipeline_s_processor_gives():
    spec = ClipSpec(num_frames=4, crop_size=16, resize_short_side=16, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    clips = torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8)
    batch = ClipCollator(spec)([{"pixel_values": clip, "labels": i} for i, clip in enumerate(clips)] + [
        {"pixel_values": None, "labels": 2},  # a video that could not be decoded is left out
    ])
    processor = video_processor_for(spec)
    expected = processor(list(clips), do_resize=False, do_center_crop=False, do_sample_frames=False, return_tensors="pt")
    assert batch["labels"].tolist() == [0, 1]
    torch.testing.assert_close(batch["pixel_values"], expected["pixel_values"], atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def flat_dataset(tmp_path_factory):
    """A flat folder vidcls splits itself by group: which videos are held out depends on the seed."""
    root = tmp_path_factory.mktemp("flat")
    for label in CLASSES:
        for group in range(1, 7):
            write_video(root / label / f"v_{label}_g{group:02d}_c01.avi", moving_square(label, 16, seed=group))
    return root


@pytest.mark.slow
def test_trainer_trains_on_vidcls_data_into_a_folder_eval_predict_and_the_pipeline_read(flat_dataset, tmp_path):
    from transformers import AutoModelForVideoClassification, Trainer, TrainingArguments, pipeline

    data = vidcls.trainer_data(flat_dataset, model="tiny", seed=3, leakage_check=False)
    assert data.labels == sorted(CLASSES)
    scored_videos = []

    def metrics_first_is_best(prediction):
        """The evaluations' order as the metric, so the best is the first and not the last: a saved folder
        with the last step's weights would show here."""
        scored_videos.append(len(prediction.label_ids))
        return {**data.compute_metrics(prediction), "evaluation": len(scored_videos)}

    args = TrainingArguments(
        str(tmp_path / "run"), eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, max_steps=4,
        per_device_train_batch_size=4, per_device_eval_batch_size=4, learning_rate=1e-3, load_best_model_at_end=True,
        metric_for_best_model="evaluation", greater_is_better=False, report_to="none", disable_tqdm=True, seed=3,
    )
    trainer = Trainer(
        data.model, args, train_dataset=data.train_dataset, eval_dataset=data.eval_dataset,
        processing_class=data.processor, data_collator=data.data_collator, compute_metrics=metrics_first_is_best,
        callbacks=data.callbacks,
    )
    trainer.train()
    assert scored_videos == [len(data.eval_dataset)] * 2  # every validation video, each evaluation
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-2")
    test_accuracy = trainer.evaluate(data.test_dataset, metric_key_prefix="test")["test_accuracy"]
    model_dir = data.save(trainer, tmp_path / "model")

    config = json.loads((model_dir / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(sorted(CLASSES))}
    saved = AutoModelForVideoClassification.from_pretrained(model_dir).state_dict()
    best = AutoModelForVideoClassification.from_pretrained(tmp_path / "run" / "checkpoint-2").state_dict()
    last = AutoModelForVideoClassification.from_pretrained(tmp_path / "run" / "checkpoint-4").state_dict()
    assert all(torch.equal(saved[name], best[name]) for name in saved)  # every weight, the biases included
    assert not all(torch.equal(saved[name], last[name]) for name in saved)
    with pytest.raises(OutputExistsError, match="already holds a model"):
        data.save(trainer, model_dir)

    from vidcls.cli._app import app

    report = tmp_path / "eval.json"
    result = CliRunner().invoke(app, [
        "eval", str(model_dir), str(flat_dataset), "--clips", "1", "--workers", "0", "--json", str(report),
        "--leakage-check", "off",
    ])
    assert result.exit_code == 0, result.output
    scores = json.loads(report.read_text())
    test_paths = sorted(str(record.path) for record in data.index.splits["test"])
    assert sorted(p["path"] for p in scores["predictions"]) == test_paths  # the split saved with the model (seed 3)
    assert scores["labels"] == sorted(CLASSES) and scores["num_videos"] == len(data.test_dataset)
    assert scores["top1"] == pytest.approx(test_accuracy)  # the pipeline's view, in Trainer and in vidcls eval

    classify = pipeline("video-classification", model=str(model_dir))
    for path in test_paths:
        theirs = {row["label"]: row["score"] for row in classify(path)}
        (ours,) = vidcls.predict(model_dir, path, clips=1)
        assert ours["top_k"][0]["label"] == max(theirs, key=theirs.get)
        for row in ours["top_k"]:
            assert row["score"] == pytest.approx(theirs[row["label"]], abs=1e-4)
