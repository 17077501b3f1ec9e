"""`ClipSpec`: the frames a model expects, and every clip default, in one torch-free place.

Read from a model once (`models.loading.clip_spec_from`) and passed down to sampling, decoding and the
transforms; the CLI reads its defaults from here without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vidcls.data.sampling import DEFAULT_CLIPS, DEFAULT_SAMPLING

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClipSpec:
    """Everything about the frames a model expects, resolved once from the model (and overrides)."""

    num_frames: int = 16
    sample_rate: int = 4  # frames between a dense clip's frames (unused by segment sampling)
    crop_size: int = 224
    resize_short_side: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    sampling: str = DEFAULT_SAMPLING  # see `vidcls.data.sampling`
    # (height, width) every frame is resized to, whole: no crop, so an actor who crosses the frame
    # stays in it (models that take any size, I3D). None: short-side resize, then the square crop.
    frame_size: tuple[int, int] | None = None
    clips: int = DEFAULT_CLIPS  # test clips a video is scored on unless asked otherwise: the model's views

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the frames the model is given."""
        return self.frame_size or (self.crop_size, self.crop_size)

    def sampled_as(self, sampling: str | None) -> ClipSpec:
        """This spec with another sampling when one is asked for (a --sampling override), else itself."""
        return replace(self, sampling=sampling) if sampling else self
