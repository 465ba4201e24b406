"""POST /metrics/compare through the client.

The route is being added to the server in parallel with this client; these tests run when
the server under test lists it in its OpenAPI document and are skipped (with that reason)
otherwise. They are the only tests that may skip.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

import evald


@pytest.fixture
def compare_client(client: evald.Client) -> evald.Client:
    if "/metrics/compare" not in client.request("GET", "/openapi.json")["paths"]:
        pytest.skip(
            "the server under test has no POST /metrics/compare yet (not in its /openapi.json)"
        )
    return client


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 400)
    a = np.clip(0.2 * y + rng.uniform(0, 0.8, 400), 0, 1)
    b = np.clip(0.4 * y + rng.uniform(0, 0.6, 400), 0, 1)
    users = rng.integers(0, 20, 400)
    return y, a, b, users


def test_compare_gives_both_models_and_the_auc_difference(compare_client: evald.Client) -> None:
    y, a, b, users = data()
    result = compare_client.compare(y, a, b, user_ids=users)
    assert result.a.auc == pytest.approx(skm.roc_auc_score(y, a), abs=1e-12)
    assert result.b.auc == pytest.approx(skm.roc_auc_score(y, b), abs=1e-12)
    assert result.auc_diff is not None
    assert result.a.auc is not None
    assert result.b.auc is not None
    assert result.auc_diff.value == pytest.approx(result.b.auc - result.a.auc, abs=1e-12)
    assert result.auc_diff["method"] == "delong-paired"
    assert result.auc_diff.p_value is not None
    assert 0 <= result.auc_diff.p_value <= 1
    assert result.gauc_diff is not None
    assert result.gauc_diff["method"] == "user-paired"
    frame = result.to_frame()
    assert frame.loc["auc", "b - a"] == pytest.approx(result.auc_diff.value, abs=1e-12)


def test_identical_models_differ_by_nothing(compare_client: evald.Client) -> None:
    y, a, _, _ = data()
    diff = compare_client.compare(y, a, a).auc_diff
    assert diff is not None
    assert diff.value == 0
    assert diff["z"] == 0
    assert diff.p_value == 1
