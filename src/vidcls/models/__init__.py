"""Models: presets, loading and saving, the self-contained modeling files (copied beside saved weights for `auto_map`), pretrained I3D, the ONNX runtime."""
