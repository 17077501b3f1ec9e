"""Any transformers video classifier fine-tunes: a tiny random model of each family, saved to disk,
trains one epoch, evaluates and predicts, with its processor's settings honoured."""

from __future__ import annotations

import json

import pytest
import torch

from vidcls.evaluation.evaluate import evaluate
from vidcls.models.loading import load_model
from vidcls.inference.prediction import predict
from vidcls.training.loop import TrainConfig
from vidcls.training.run import train
from vidcls.inference.options import ViewOptions

pytestmark = pytest.mark.slow  # each test trains a model

SIZE, FRAMES = 32, 4


def _timesformer():
    from transformers import TimesformerConfig, TimesformerForVideoClassification, VideoMAEImageProcessor

    config = TimesformerConfig(image_size=SIZE, patch_size=16, num_frames=FRAMES, hidden_size=32, num_hidden_layers=1,
                               num_attention_heads=2, intermediate_size=64, num_labels=2)
    processor = VideoMAEImageProcessor(size={"shortest_edge": 40}, crop_size={"height": SIZE, "width": SIZE},
                                       image_mean=[0.45, 0.45, 0.45], image_std=[0.225, 0.225, 0.225])
    return TimesformerForVideoClassification(config), processor


def _vivit():
    from transformers import VivitConfig, VivitForVideoClassification, VivitImageProcessor

    config = VivitConfig(image_size=SIZE, num_frames=FRAMES, tubelet_size=[2, 16, 16], hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64, num_labels=2)
    processor = VivitImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    return VivitForVideoClassification(config), processor


def _vjepa2():
    from transformers import VJEPA2Config, VJEPA2ForVideoClassification, VJEPA2VideoProcessor

    config = VJEPA2Config(crop_size=SIZE, frames_per_clip=FRAMES, patch_size=16, tubelet_size=2, hidden_size=32,
                          num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2.0, pred_hidden_size=32,
                          pred_num_hidden_layers=1, pred_num_attention_heads=2, pred_num_mask_tokens=2, num_labels=2)
    processor = VJEPA2VideoProcessor(size={"shortest_edge": 36}, crop_size={"height": SIZE, "width": SIZE})
    return VJEPA2ForVideoClassification(config), processor


def _videomae():
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    config = VideoMAEConfig(image_size=SIZE, patch_size=16, num_frames=FRAMES, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=2)
    processor = VideoMAEImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    return VideoMAEForVideoClassification(config), processor


FAMILIES = {"videomae": _videomae, "timesformer": _timesformer, "vivit": _vivit, "vjepa2": _vjepa2}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_trains_evaluates_and_predicts(family, motion_dataset, tmp_path):
    model, processor = FAMILIES[family]()
    base = tmp_path / "base"
    model.save_pretrained(base)
    processor.save_pretrained(base)
    expected = load_model(str(base)).spec  # what the base model's own processor and config say

    output = tmp_path / "tuned"
    result = train(TrainConfig(data=str(motion_dataset), output=str(output), model=str(base), epochs=1, batch_size=4,
                               workers=0, flip=False, progress=False))
    assert result.epochs_run == 1 and result.labels == ["MoveLeft", "MoveRight", "MoveUp"]
    tuned = load_model(str(output))
    assert type(tuned.model).__name__ == type(model).__name__
    assert tuned.labels == result.labels
    for setting in ("num_frames", "crop_size", "resize_short_side", "mean", "std"):  # never silently replaced
        assert getattr(tuned.spec, setting) == pytest.approx(getattr(expected, setting)), setting
    assert tuned.spec.num_frames == FRAMES and tuned.spec.crop_size == SIZE
    assert json.loads((output / "config.json").read_text())["vidcls"]["num_frames"] == FRAMES

    report = evaluate(tuned, motion_dataset, ViewOptions(clips=1))
    assert report.num_videos == 6 and 0 <= report.top1 <= 1
    (row,) = predict(tuned, [next((motion_dataset / "test" / "MoveUp").glob("*.avi"))], ViewOptions(top_k=2))
    assert len(row["top_k"]) == 2 and sum(t["score"] for t in row["top_k"]) <= 1 + 1e-5


def test_vivit_rescale_and_offset_become_vidclss_mean_and_std():
    model, processor = _vivit()
    from vidcls.models.loading import clip_spec_from
    from vidcls.data.transforms import normalize_batch

    spec = clip_spec_from(model, processor)
    frames = torch.randint(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=torch.uint8)
    expected = processor(list(frames.numpy()), return_tensors="pt")["pixel_values"]
    ours = normalize_batch(frames.permute(0, 3, 1, 2).unsqueeze(0), spec)
    torch.testing.assert_close(ours, expected.float(), atol=1e-5, rtol=1e-5)
