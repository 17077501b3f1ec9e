"""The I3D network's TensorFlow-compatible pieces, on random weights (no download needed)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from vidcls.models.modeling_i3d import I3DConfig, I3DForVideoClassification, MaxPool3dSame, _same_padding


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"), [
    (224, 7, 2, (2, 3)),  # TensorFlow puts the odd pixel after
    (79, 7, 2, (3, 3)),
    (5, 2, 2, (0, 1)),
    (4, 2, 2, (0, 0)),
    (8, 3, 1, (1, 1)),
])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    assert _same_padding(size, kernel, stride) == expected


def test_max_pool_never_picks_the_padding():
    x = -torch.ones(1, 1, 3, 5, 5)  # all negative: zero padding would win
    assert MaxPool3dSame((3, 3, 3), (1, 1, 1))(x).max().item() == -1


@pytest.fixture(scope="module")
def model() -> I3DForVideoClassification:
    torch.manual_seed(0)
    return I3DForVideoClassification(I3DConfig(num_labels=3)).eval()


@pytest.mark.parametrize(("frames", "size"), [(4, 48), (9, 64)])
def test_any_frame_count_and_size(model, frames, size):
    with torch.inference_mode():
        assert model(pixel_values=torch.randn(2, frames, 3, size, size)).logits.shape == (2, 3)


def test_final_pooling_is_deepminds_window_average_then_time_mean(model):
    """At 224 px DeepMind averages Mixed_5c over 2 x 7 x 7 windows, then the logits over time."""
    mixed_5c = torch.randn(1, 1024, 5, 7, 7)
    windows = F.avg_pool3d(mixed_5c, (2, 7, 7), stride=1).flatten(2)  # (1, 1024, 4)
    theirs = model.classifier(windows.transpose(1, 2)).mean(dim=1)
    hook = model.backbone["Mixed_5c"].register_forward_hook(lambda module, args, out: mixed_5c)  # replaces its output
    try:
        with torch.inference_mode():
            ours = model(pixel_values=torch.randn(1, 8, 3, 32, 32)).logits
    finally:
        hook.remove()
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_training_keeps_batch_norm_on_pretrained_statistics(model):
    model.train()
    try:
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
        assert norms and not any(m.training for m in norms) and model.dropout.training
    finally:
        model.eval()


def test_descriptor_settings_are_off_by_default_and_compute_what_they_say():
    """Sub-clips: the mean of each consecutive clip's features; flip averaging: a mirror image has the same
    descriptor; unit length: the norm is one. Off by default: the plain clip features."""
    torch.manual_seed(0)
    plain = I3DForVideoClassification(I3DConfig(num_labels=2)).eval()
    x = torch.randn(2, 8, 3, 32, 40)
    with torch.inference_mode():
        assert torch.equal(plain.pooled_features(x), plain.clip_features(x))
        plain.config.sub_clips = 2
        halves = (plain.clip_features(x[:, :4]) + plain.clip_features(x[:, 4:])) / 2
        assert torch.allclose(plain.pooled_features(x), halves, atol=1e-5)
        plain.config.flip_average, plain.config.normalize_features = True, True
        features = plain.pooled_features(x)
        assert torch.allclose(features, plain.pooled_features(x.flip(-1)), atol=1e-5)
        assert torch.allclose(features.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_joined_frame_features_are_each_part_at_unit_length_then_the_whole():
    torch.manual_seed(0)
    joined = I3DForVideoClassification(I3DConfig(
        num_labels=2, frame_backbone="efficientnet-lite0", frame_stride=2, normalize_features=True,
    )).eval()
    x = torch.rand(2, 8, 3, 32, 40) * 2 - 1
    with torch.inference_mode():
        raw = joined.raw_features(x)
        i3d, frames = raw.split(joined.part_sizes, dim=-1)
        assert joined.part_sizes == (1024, 1280) and joined.classifier.in_features == 2304
        assert torch.allclose(i3d, joined.clip_features(x), atol=1e-5)
        every_other = joined.frame_backbone.frame_features((x[:, ::2].flatten(0, 1) * 127.5 + 0.5) / 128)
        assert torch.allclose(frames, every_other.reshape(2, 4, -1).mean(1), atol=1e-5)
        expected = F.normalize(torch.cat([F.normalize(i3d, dim=-1), F.normalize(frames, dim=-1)], -1), dim=-1)
        assert torch.allclose(joined.pooled_features(x), expected, atol=1e-5)
