"""The forward path's precision: bf16 scoring where the CPU runs it natively, full precision
elsewhere and on request, the channels-last layout, and what bf16 keeps of a model's answers."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch

from vidcls.data.clip_spec import ClipSpec
from vidcls.errors import VidclsError
from vidcls.inference import forward
from vidcls.inference.options import ViewOptions
from vidcls.inference.prediction import VideoClassifier, videos_under

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("choice", "native", "bf16"),
    [("auto", True, True), ("auto", False, False), ("fp32", True, False), ("bf16", False, True)],
)
def test_scoring_precision_follows_the_setting_and_the_cpu(choice, native, bf16, monkeypatch):
    monkeypatch.setenv(forward.PRECISION_ENV, choice)
    monkeypatch.setattr(forward, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(forward, "BF16_MIN_PARAMETERS", 2)
    assert forward.scores_in_bf16(torch.nn.Linear(1, 1), CPU) is bf16  # two parameters: large enough here
    assert forward.scores_in_bf16(torch.nn.Linear(1, 1, bias=False), CPU) is False  # one: too small
    assert forward.scores_in_bf16(object(), CPU) is False  # an onnxruntime session keeps its own precision
    assert isinstance(forward.autocast(CPU), contextlib.nullcontext)  # training on a CPU: always full precision


def test_an_unknown_precision_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(forward.PRECISION_ENV, "fp8")
    with pytest.raises(VidclsError, match="VIDCLS_PRECISION='fp8'"):
        forward.cpu_scores_in_bf16()


class MeanPixelModel(torch.nn.Module):
    """Logits (m, -m) from a clip's mean normalised pixel m: near 0 the two classes tie."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 2, bias=False)
        self.linear.weight.data = torch.tensor([[1.0], [-1.0]])

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.linear(pixel_values.mean(dim=(1, 2, 3, 4))[:, None]))


def test_bf16_never_decides_a_near_tie(monkeypatch):
    monkeypatch.setattr(forward, "BF16_MIN_PARAMETERS", 0)
    spec = ClipSpec(num_frames=2, crop_size=4, mean=(0.5,) * 3, std=(0.5,) * 3)
    views = torch.stack([torch.full((1, 2, 3, 4, 4), value, dtype=torch.uint8) for value in (128, 200)])
    model = MeanPixelModel()
    scores = {}
    for precision in ("fp32", "bf16"):
        monkeypatch.setenv(forward.PRECISION_ENV, precision)
        scores[precision] = forward.video_probabilities(model, views, spec)
    assert forward.near_ties(scores["fp32"]).tolist() == [True, False]
    assert torch.equal(scores["bf16"][0], scores["fp32"][0])  # the tie: scored again in full precision
    assert not torch.equal(scores["bf16"][1], scores["fp32"][1])  # the clear winner: bf16's scores
    assert torch.allclose(scores["bf16"][1], scores["fp32"][1], atol=0.01)


@pytest.mark.parametrize(("minimum", "batches"), [(0, [1, 1, 1]), (10, [3])])
def test_a_large_model_on_a_cpu_scores_one_clip_per_forward_and_the_same_probabilities(minimum, batches, monkeypatch):
    monkeypatch.setenv(forward.PRECISION_ENV, "fp32")
    monkeypatch.setattr(forward, "BF16_MIN_PARAMETERS", minimum)  # the model's 2 parameters: large, or small
    spec = ClipSpec(num_frames=2, crop_size=4, mean=(0.5,) * 3, std=(0.5,) * 3)
    views = torch.stack([torch.full((1, 2, 3, 4, 4), value, dtype=torch.uint8) for value in (90, 128, 200)])
    model, seen = MeanPixelModel(), []
    model.register_forward_pre_hook(lambda _module, _args, kwargs: seen.append(len(kwargs["pixel_values"])), with_kwargs=True)
    scores = forward.video_probabilities(model, views, spec)
    assert seen == batches
    monkeypatch.setattr(forward, "BF16_MIN_PARAMETERS", 10 - minimum)
    assert torch.allclose(scores, forward.video_probabilities(model, views, spec))


def test_channels_last_keeps_the_values_and_gives_a_channels_last_3d_clip():
    pixels = torch.randn(2, 4, 3, 5, 6)
    laid_out = forward.channels_last(pixels)
    assert torch.equal(laid_out, pixels)
    assert laid_out.transpose(1, 2).is_contiguous(memory_format=torch.channels_last_3d)


def test_bf16_scoring_keeps_the_trained_models_answers(trained_model, broken_dataset, monkeypatch):
    monkeypatch.setattr(forward, "BF16_MIN_PARAMETERS", 0)  # the tiny model, scored as a large one would be
    classifier = VideoClassifier(str(trained_model))
    videos = videos_under(broken_dataset[0] / "test")
    scores = {}
    for precision in ("fp32", "bf16"):
        monkeypatch.setenv(forward.PRECISION_ENV, precision)
        scores[precision] = [r["top_k"] for r in classifier.predict_files(videos, ViewOptions(clips=1))]
    for full, half in zip(scores["fp32"], scores["bf16"]):
        assert full[0]["label"] == half[0]["label"]
        by_label = {row["label"]: row["score"] for row in half}
        assert all(abs(row["score"] - by_label[row["label"]]) < 0.02 for row in full)
