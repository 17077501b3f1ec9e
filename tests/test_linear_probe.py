"""The features recipe's head: cross-validated C, refitted on every video, written as the classifier."""

from __future__ import annotations

import numpy as np
import torch

from vidcls.training.linear_probe import HEAD_C_GRID, VideoFeatures, fit_head


def _features(rng: np.random.Generator, per_class: int, centres: np.ndarray, groups: bool) -> VideoFeatures:
    labels = np.repeat(np.arange(len(centres)), per_class)
    plain = centres[labels] + rng.normal(scale=0.8, size=(len(labels), centres.shape[1]))
    names = np.asarray([f"{label}/g{i % 5:02d}" if groups else None for i, label in enumerate(labels)], dtype=object)
    half = centres.shape[1] // 2  # two parts, as I3D's and the frames' features
    return VideoFeatures(plain.astype(np.float32), plain[:, ::-1].astype(np.float32).copy(), labels, names, (half, half))


def test_two_classes_give_a_two_row_classifier_with_the_regression_s_probabilities():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16))
    train, val = _features(rng, 20, centres, groups=True), _features(rng, 4, centres, groups=True)
    fit = fit_head(train, val, num_classes=2, flips=(True, False))
    assert fit.weight.shape == (2, 16) and fit.c in HEAD_C_GRID and len(fit.tried) == 2 * len(HEAD_C_GRID)  # flips x C
    pooled = VideoFeatures.joined([train, val])
    x = pooled.descriptors(fit.flip)
    theirs = LogisticRegression(C=fit.c, max_iter=1000).fit(x, pooled.labels).predict_proba(x)
    ours = torch.softmax(torch.from_numpy(x @ fit.weight.T + fit.bias), -1).numpy()
    assert np.allclose(ours, theirs, atol=1e-4)
    assert fit.val_accuracy is not None and fit.val_accuracy >= 0.75  # separable centres: held out, mostly right


def test_too_few_videos_a_class_to_cross_validate_take_the_default_c():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 8))
    fit = fit_head(_features(rng, 1, centres, groups=False), _features(rng, 0, centres, groups=False), 3, (False,))
    assert fit.tried == [] and fit.val_accuracy is None and np.abs(fit.weight).sum() > 0
