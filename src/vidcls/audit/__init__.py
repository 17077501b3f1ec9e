"""Audit a dataset folder: duplicates across splits, likely mislabelled videos, imbalance and outliers.

One module per concern: `signatures` (per-video descriptors, cached), `duplicates`,
`embeddings` (signatures from a model), `label_issues`, `outliers`, `report`; `core` runs them.
"""
