"""The HTTP API's request options and response bodies, so /docs shows exactly what comes back."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from vidcls.defaults import TOP_K
from vidcls.data.sampling import Sampling
from vidcls.inference.options import CROPS, ViewOptions

MAX_CLIPS = 32  # more clips cost linearly and stop changing the answer long before this


class PredictOptions(BaseModel):
    """How to classify an upload; sent as query parameters or as form fields next to the file."""

    top_k: int = Field(TOP_K, ge=1, le=1000, description="How many labels to return, best first.")
    clips: int | None = Field(
        None, ge=1, le=MAX_CLIPS, description="Clips spread over the video, averaged. Default: the model's views.",
    )
    window: float | None = Field(
        None, gt=0, description="Also classify every WINDOW seconds and return the timeline."
    )
    crops: int = Field(1, ge=1, le=3, description="1: centre crop; 3: three crops along the long side, averaged.")
    sampling: Sampling | None = Field(
        None, description="segment: frames spread over the whole video; dense: short runs of frames. "
        "Default: what the model was trained with.",
    )
    frames: bool = Field(False, description="Return thumbnails of the centre clip's frames.")

    @field_validator("crops")
    @classmethod
    def _one_or_three(cls, crops: int) -> int:
        if crops not in CROPS:
            raise ValueError("crops must be 1 (centre) or 3 (along the long side)")
        return crops

    def view_options(self) -> ViewOptions:
        """The request's options as every scoring job takes them."""
        return ViewOptions(clips=self.clips, crops=self.crops, window=self.window, sampling=self.sampling, top_k=self.top_k)


class LabelScore(BaseModel):
    label: str
    score: float = Field(description="Probability, 0 to 1.")


class Window(BaseModel):
    start: float = Field(description="Seconds from the start of the video.")
    end: float
    top_k: list[LabelScore]


class PredictResponse(BaseModel):
    model: str
    top_k: list[LabelScore]
    duration: float = Field(description="Length of the video in seconds.")
    time_ms: float = Field(description="Decoding and inference time on the server, upload excluded.")
    windows: list[Window] = Field(default_factory=list, description="Only when `window` was given.")
    frames: list[str] = Field(
        default_factory=list, description="JPEG data URLs of the frames the model saw, when `frames=true`."
    )
    warnings: list[str] = Field(
        default_factory=list, description="What to know about a file still classified: damage (frames lost)."
    )


class HealthResponse(BaseModel):
    status: str = "ok"
    model: str
    device: str
    labels: int
    max_upload_mb: float


class LabelsResponse(BaseModel):
    labels: list[str]


class ErrorResponse(BaseModel):
    detail: str
