"""Scoring a model on a dataset split, and the report a person reads."""
