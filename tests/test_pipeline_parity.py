"""What training used is what transformers.pipeline and vidcls use: the saved processors and
sampling round-trip, TorchCodec decodes, and the pipeline called as the guide calls it (no
sampling arguments) gives the probabilities of vidcls's first test clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from videos import label_of, moving_square, write_vfr_video, write_video
from vidcls.models.loading import create_model, load_model
from vidcls.models.saving import LoadedModel, save_model
from vidcls.inference.prediction import VideoClassifier
from vidcls.inference.options import ViewOptions

LABELS = ["MoveLeft", "MoveRight", "MoveUp"]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("parity") / "v_MoveUp_g01_c01.avi", moving_square("MoveUp", num_frames=57))


def test_torchcodec_imports_and_decodes_the_frames_pyav_reads(video):
    from torchcodec.decoders import VideoDecoder

    from vidcls.data.decode import read_frames
    from vidcls.data.probe import probe_video

    decoder = VideoDecoder(str(video), seek_mode="exact")
    assert decoder.metadata.num_frames == probe_video(video).num_frames == 57
    indices = [0, 13, 56]
    theirs = decoder.get_frames_at(indices=indices).data.permute(0, 2, 3, 1).numpy()
    ours = read_frames(video, indices)
    assert theirs.shape == ours.shape
    assert np.abs(theirs.astype(int) - ours.astype(int)).mean() < 2  # same frames, same colour conversion


@pytest.mark.parametrize("preset", ["motion", "tiny"])
def test_saved_sampling_and_processors_round_trip(preset, tmp_path):
    created = create_model(preset, LABELS, sampling="segment")
    save_model(created, tmp_path / preset)
    saved = json.loads((tmp_path / preset / "video_preprocessor_config.json").read_text())
    assert saved["num_frames"] == created.spec.num_frames and saved["do_sample_frames"] is True
    assert saved["crop_size"]["height"] == created.spec.crop_size
    assert json.loads((tmp_path / preset / "config.json").read_text())["vidcls"]["sampling"] == "segment"
    assert load_model(str(tmp_path / preset)).spec == created.spec
    dense = create_model(preset, LABELS, sampling="dense", sample_rate=3)
    save_model(dense, tmp_path / "dense")
    assert load_model(str(tmp_path / "dense")).spec == dense.spec


@pytest.mark.parametrize("preset", ["motion", "tiny"])
def test_guide_pipeline_call_scores_what_vidcls_scores(preset, video, tmp_path):
    from transformers import pipeline

    save_model(create_model(preset, LABELS), tmp_path / preset)
    remote = {"trust_remote_code": True} if preset == "motion" else {}  # motion ships its modeling code
    classify = pipeline("video-classification", model=str(tmp_path / preset), **remote)
    assert type(classify.video_processor).__name__ == "VideoMAEVideoProcessor"
    theirs = {row["label"]: row["score"] for row in classify(str(video))}
    ours = {row["label"]: row["score"] for row in VideoClassifier(str(tmp_path / preset)).predict(video, ViewOptions(clips=1)).top_k}
    for label in LABELS:
        assert ours[label] == pytest.approx(theirs[label], abs=1e-4)


def test_motion_model_needs_no_remote_code_in_vidcls(tmp_path):
    save_model(create_model("motion", LABELS), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["auto_map"]["AutoModelForVideoClassification"] == "modeling_motion_cnn.MotionCNNForVideoClassification"
    assert (tmp_path / "m" / "modeling_motion_cnn.py").is_file()
    assert type(load_model(str(tmp_path / "m")).model).__name__ == "MotionCNNForVideoClassification"


def test_on_variable_frame_rate_the_pipeline_spreads_frames_by_count_and_vidcls_by_time(tmp_path):
    """Where the two views differ, shown: frame N is the frame shown at N / fps (time) for vidcls,
    the N-th frame decoded (count) for the pipeline; on a constant-rate file they are the same."""
    from transformers import pipeline

    from vidcls.data.sampling import segment_indices
    from vidcls.data.transforms import EvalTransform
    from vidcls.data.decode import read_frames
    from vidcls.data.probe import probe_video

    stamps = [0, 40, 80, 200, 240, 280, 400, 440, 480, 600, 640, 680, 800, 840, 880, 1000]  # ms, gaps
    path = write_vfr_video(tmp_path / "vfr.mkv", stamps)
    torch.manual_seed(0)
    created = create_model("tiny", LABELS)
    with torch.no_grad():  # an untrained head barely moves with its input: sharpen it so frames tell
        created.model.classifier.weight.mul_(10)
    save_model(created, tmp_path / "tiny")
    classifier = VideoClassifier(str(tmp_path / "tiny"))
    frames = classifier.spec.num_frames
    info = probe_video(path)
    by_time = [next(j for j, s in enumerate(stamps) if round(s / 40) >= i) for i in segment_indices(info.num_frames, frames, 0)]
    by_count = (np.arange(frames) * len(stamps) // frames).tolist()  # the pipeline's np.arange(n) * total // n
    assert by_time != by_count
    ours = classifier.preprocess(path, ViewOptions(clips=1)).views[0]
    assert [label_of(frame, channels_first=True) for frame in ours.numpy()] == by_time

    theirs = {row["label"]: row["score"] for row in pipeline("video-classification", model=str(tmp_path / "tiny"))(str(path))}
    transform = EvalTransform(classifier.spec, 1)
    time_of = [round(s / 40) for s in stamps]
    counted = read_frames(path, [time_of[j] for j in by_count], resize=transform.decode_resize())
    as_counted = classifier.postprocess(classifier.score(transform(counted)[None])[0], ViewOptions(top_k=len(LABELS)))
    for row in as_counted:
        assert row["score"] == pytest.approx(theirs[row["label"]], abs=1e-5)
    by_vidcls = classifier.predict(path, ViewOptions(clips=1)).top_k  # the frames by time: a score the tolerance tells apart
    assert any(row["score"] != pytest.approx(theirs[row["label"]], abs=1e-4) for row in by_vidcls)


def test_a_whole_frame_model_is_scored_by_the_pipeline_as_by_vidcls(tmp_path):
    """A model that reads whole frames (no crop, a fixed height x width, as the features recipe saves it):
    the saved processor resizes a 16:9 video as vidcls does, and one forward with sub-clips and mirror
    averaging, joined with per-frame features (whose modeling file the I3D one imports), gives the
    pipeline vidcls's probabilities at the model's default views (one clip)."""
    from dataclasses import replace

    from transformers import pipeline

    from vidcls.models.modeling_i3d import I3DConfig, I3DForVideoClassification

    torch.manual_seed(0)
    labels = {i: label for i, label in enumerate(LABELS)}
    config = I3DConfig(num_frames=8, image_size=32, id2label=labels, label2id={v: k for k, v in labels.items()},
                       sub_clips=2, flip_average=True, normalize_features=True, frame_backbone="efficientnet-lite0",
                       frame_stride=2)
    model = I3DForVideoClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(std=10)  # unit-length features: a large head so frames tell
    spec = replace(
        create_model("motion", LABELS).spec, num_frames=8, frame_size=(32, 56), crop_size=32, resize_short_side=32, clips=1,
        mean=(0.5,) * 3, std=(0.5,) * 3,
    )

    save_model(LoadedModel(model, None, spec, "whole"), tmp_path / "whole")
    assert load_model(str(tmp_path / "whole")).spec == spec
    video = write_video(tmp_path / "wide.avi", moving_square("MoveRight", num_frames=40, width=128, height=72))
    classifier = VideoClassifier(str(tmp_path / "whole"))
    assert classifier.preprocess(video, ViewOptions()).views.shape == (1, 8, 3, 32, 56)
    theirs = {row["label"]: row["score"] for row in pipeline("video-classification", model=str(tmp_path / "whole"), trust_remote_code=True)(str(video))}
    ours = {row["label"]: row["score"] for row in classifier.predict(video, ViewOptions()).top_k}
    assert max(theirs.values()) < 0.99  # scores that can tell a wrong frame apart
    for label in LABELS:
        assert ours[label] == pytest.approx(theirs[label], abs=1e-3)
