"""Scoring videos with a loaded model: the forward, predictions and timelines, view options, Ray, the GIF preview."""
