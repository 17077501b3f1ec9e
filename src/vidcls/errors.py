"""Errors that carry the file and the problem, so the CLI can print one clear line."""

from __future__ import annotations

from pathlib import Path


class VidclsError(Exception):
    """Base for every error vidcls raises on purpose (bad input, bad settings)."""


class VideoReadError(VidclsError):
    """A video could not be opened or decoded."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(VidclsError):
    """A dataset folder is missing, empty or inconsistent."""


class ModelError(VidclsError):
    """A model could not be created, loaded, or does not fit the data."""


class OutputExistsError(VidclsError):
    """An output folder already holds work that would be overwritten."""


class HubError(VidclsError):
    """The Hugging Face hub could not be reached, or refused a request."""
