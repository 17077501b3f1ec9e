"""`ViewOptions`: how a video is looked at when it is scored, one object for every job that scores.

Predict, eval, the server, the Ray engine and the timeline take one `ViewOptions` and route it
once, as transformers' pipelines route their parameters: ``clips``, ``crops``, ``sampling`` and
``window`` go to preprocessing (which frames and pixels make the views), ``top_k`` to
postprocessing (how many labels come back). Torch-free, so the CLI reads its defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from vidcls.defaults import TOP_K
from vidcls.errors import VidclsError
from vidcls.data.sampling import SAMPLINGS, Sampling

if TYPE_CHECKING:
    from vidcls.data.clip_spec import ClipSpec

CROPS = (1, 3)  # a centre crop, or three crops along the long side (VideoMAE's and mmaction2's test views)


@dataclass(frozen=True)
class ViewOptions:
    """The views a video's score is averaged over, its timeline, and the labels returned.

    ``clips`` test clips spread over the video (None: the model's default views, `ClipSpec.clips`:
    `DEFAULT_CLIPS` unless the model says) x ``crops`` crops, sampled as the model was trained
    unless ``sampling`` says otherwise; with ``window``, also one clip per ``window`` seconds (a
    timeline); ``top_k`` labels per video and per window, best first.
    """

    clips: int | None = None
    crops: int = 1
    window: float | None = None
    sampling: Sampling | None = None
    top_k: int = TOP_K

    def __post_init__(self) -> None:
        if self.clips is not None and self.clips < 1:
            raise VidclsError(f"clips must be at least 1, got {self.clips}")
        if self.crops not in CROPS:
            raise VidclsError(f"crops must be 1 (centre) or 3 (along the long side), got {self.crops}")
        if self.window is not None and self.window <= 0:
            raise VidclsError(f"window must be a positive number of seconds, got {self.window}")
        if self.sampling is not None and self.sampling not in SAMPLINGS:
            raise VidclsError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.top_k < 1:
            raise VidclsError(f"top_k must be at least 1, got {self.top_k}")

    def for_model(self, spec: ClipSpec) -> ViewOptions:
        """These options with the model's default clips where none were asked for."""
        return self if self.clips is not None else replace(self, clips=spec.clips)

    @classmethod
    def take_from(cls, options: dict) -> tuple[ViewOptions, dict]:
        """The view options among keyword arguments, and the other arguments: the Python API's
        ``vidcls.predict(model, paths, clips=2, batch_size=8)`` is routed here, once."""
        names = {f.name for f in fields(cls)}
        views = cls(**{name: value for name, value in options.items() if name in names})
        return views, {name: value for name, value in options.items() if name not in names}
