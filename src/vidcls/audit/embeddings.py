"""Signatures from a trained model: its pooled features (the classifier head's input) of clips
spread over each video, compared by cosine distance instead of the thumbnails' grey levels.

Why offer them: features learnt on the user's classes ignore what the thumbnails see and the
classes do not care about (a colour grade, a watermark); the thumbnails see what any copy keeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidcls.audit.signatures import Signature
from vidcls.errors import ModelError
from vidcls.data.files import VideoInfo

EMBEDDING_CLIPS = 8  # clips spread over each video, one feature vector each
EMBEDDING_KIND = "embedding-v1"


class ModelEmbedder:
    """Callable path, info -> `Signature` whose frames are (1, clips, features) model features."""

    def __init__(self, model: str, device: str | None = None) -> None:
        from vidcls.inference.forward import pick_device
        from vidcls.models.loading import load_model

        self.loaded = load_model(model, pick_device(device))
        head = getattr(self.loaded.model, "classifier", None)
        if not isinstance(head, torch.nn.Module):
            raise ModelError(f"{model}: has no `classifier` head whose input vidcls can read as features")
        self.features: list[torch.Tensor] = []
        head.register_forward_pre_hook(lambda _module, args: self.features.append(args[0].detach().float().cpu()))

    @property
    def kind(self) -> str:
        """Cache key part: the model folder and when its weights last changed."""
        weights = sorted(Path(self.loaded.name).glob("*.safetensors")) if Path(self.loaded.name).is_dir() else []
        stamp = max((w.stat().st_mtime_ns for w in weights), default=0)
        return f"{EMBEDDING_KIND}|{Path(self.loaded.name).resolve()}|{stamp}"

    @torch.inference_mode()
    def __call__(self, path: Path, info: VideoInfo) -> Signature:
        from vidcls.inference.forward import model_logits
        from vidcls.data.views import video_views

        views = video_views(path, self.loaded.spec, clips=EMBEDDING_CLIPS, info=info).views
        self.features.clear()
        model_logits(self.loaded.model, views.to(next(self.loaded.model.parameters()).device), self.loaded.spec)
        features = torch.cat(self.features).numpy().astype(np.float32)
        return Signature(features[None], "", float("nan"), np.empty(0, np.float32))
