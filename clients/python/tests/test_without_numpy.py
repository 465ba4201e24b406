"""Without NumPy installed, curves and arrays come back as plain lists."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

import evald
from evald import _results


def no_numpy(name: str) -> ModuleType | None:
    return None


def test_curves_and_arrays_are_lists_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_results, "optional", no_numpy)
    answer = {
        "task": "binary",
        "count": 2,
        "roc": {"fpr": [0.0, 0.0, 1.0], "tpr": [0.0, 1.0, 1.0], "thresholds": [None, 0.9, 0.1]},
    }
    roc = evald.MetricsResult(answer).roc
    assert roc is not None
    assert roc.fpr == [0.0, 0.0, 1.0]
    assert isinstance(roc.thresholds, list)
    assert math.isinf(roc.thresholds[0])
    assert evald.ArrayResult({"output": [[1.0, 2.0]]}).output == [[1.0, 2.0]]


def test_pr_and_calibration_are_lists_without_numpy(
    client: evald.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_results, "optional", no_numpy)
    m = client.metrics([1, 0, 1, 0, 1], [0.9, 0.2, 0.6, 0.4, 0.3], calibration={"n_bins": 2})
    assert m.pr is not None
    precision, recall, thresholds = m.pr
    assert isinstance(precision, list)
    assert recall[-1] == 0.0
    assert thresholds == sorted(thresholds)
    assert m.calibration is not None
    prob_true, prob_pred = m.calibration
    assert isinstance(prob_true, list)
    assert isinstance(prob_pred, list)
    assert isinstance(m.calibration.counts, list)
    assert sum(m.calibration.counts) == 5
