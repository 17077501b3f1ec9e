"""Videos on disk to uint8 clips: files, probing and decoding, frame sampling, crops, views, dataset discovery and splits, datasets, the synthetic data."""
