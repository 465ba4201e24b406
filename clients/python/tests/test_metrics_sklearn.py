"""POST /metrics through the client equals scikit-learn wherever both compute the same thing.

Reference: scikit-learn (the version installed next to these tests). Tolerances: 1e-12
absolute unless said otherwise (the server is exact; only summation order differs).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn import metrics as skm

import evald

EPS = 1e-12


def binary_data(
    n: int = 2000, seed: int = 7
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    # Rounded scores give many ties, the case where ROC layouts differ most easily.
    score = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0, 1), 2)
    users = rng.integers(0, 40, n)
    return y, score, users


def close(actual: float | None, expected: float, eps: float = EPS) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=0, abs_tol=eps)


def test_binary_scores_equal_sklearn(client: evald.Client) -> None:
    y, score, _ = binary_data()
    result = client.metrics(y, score, threshold=0.5, beta=2.0)
    predicted = (score >= 0.5).astype(int)
    assert result.task == "binary"
    assert result.count == len(y)
    assert result.positives == int(y.sum())
    assert close(result.auc, skm.roc_auc_score(y, score))
    assert close(result.accuracy, skm.accuracy_score(y, predicted))
    assert close(result.precision, skm.precision_score(y, predicted))
    assert close(result.recall, skm.recall_score(y, predicted))
    assert close(result.f1, skm.f1_score(y, predicted))
    assert close(result.f_beta, skm.fbeta_score(y, predicted, beta=2.0))
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
    assert result.confusion == evald.Confusion(tp=tp, fp=fp, tn=tn, fn=fn)


@pytest.mark.parametrize("drop_intermediate", [True, False])
def test_roc_equals_sklearn_roc_curve(client: evald.Client, drop_intermediate: bool) -> None:
    y, score, _ = binary_data()
    roc_options = {"max_points": None, "drop_intermediate": drop_intermediate}
    roc = client.metrics(y, score, roc=roc_options).roc
    assert roc is not None
    fpr, tpr, thresholds = skm.roc_curve(y, score, drop_intermediate=drop_intermediate)
    assert isinstance(roc.fpr, np.ndarray)
    np.testing.assert_allclose(roc.fpr, fpr, rtol=0, atol=EPS)
    np.testing.assert_allclose(roc.tpr, tpr, rtol=0, atol=EPS)
    # The first threshold is null on the wire, +inf here and in scikit-learn.
    np.testing.assert_array_equal(roc.thresholds, thresholds)
    assert roc.points_dropped == 0


def test_weighted_metrics_equal_sklearn(client: evald.Client) -> None:
    y, score, _ = binary_data(seed=11)
    weights = np.random.default_rng(3).uniform(0, 3, len(y))
    result = client.metrics(y, score, sample_weight=weights, roc={"max_points": None})
    predicted = (score >= 0.5).astype(int)
    assert close(result.auc, skm.roc_auc_score(y, score, sample_weight=weights))
    assert close(result.accuracy, skm.accuracy_score(y, predicted, sample_weight=weights))
    assert close(result.f1, skm.f1_score(y, predicted, sample_weight=weights))
    assert result.roc is not None
    fpr, tpr, _ = skm.roc_curve(y, score, sample_weight=weights)
    np.testing.assert_allclose(result.roc.fpr, fpr, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.roc.tpr, tpr, rtol=0, atol=1e-9)


def test_gauc_is_the_impression_weighted_mean_of_sklearn_per_user_auc(client: evald.Client) -> None:
    y, score, users = binary_data(seed=5)
    gauc = client.metrics(y, score, user_ids=users).gauc
    aucs, weights = [], []
    for user in np.unique(users):
        mask = users == user
        if len(np.unique(y[mask])) == 2:
            aucs.append(skm.roc_auc_score(y[mask], score[mask]))
            weights.append(mask.sum())
    assert gauc is not None
    assert close(gauc.value, float(np.average(aucs, weights=weights)))
    assert gauc["users"] == len(np.unique(users))
    assert gauc["users_skipped"] == len(np.unique(users)) - len(aucs)


def test_lists_numpy_and_pandas_inputs_give_the_same_answer(client: evald.Client) -> None:
    y, score, users = binary_data(n=300)
    from_lists = client.metrics(y.tolist(), score.tolist(), user_ids=[str(u) for u in users])
    from_numpy = client.metrics(y, score, user_ids=users.astype(str))
    frame = pd.DataFrame({"click": y.astype(bool), "score": score, "uid": users.astype(str)})
    from_pandas = client.metrics(frame["click"], frame["score"], user_ids=frame["uid"])
    assert from_lists.to_dict() == from_numpy.to_dict() == from_pandas.to_dict()
    # float32 arrays and NumPy scalars in options are converted too.
    from_float32 = client.metrics(y, score.astype(np.float32), threshold=np.float32(0.5))
    assert close(from_float32.auc, skm.roc_auc_score(y, score.astype(np.float32)))


# scikit-learn warns that top-k accuracy with k = C is trivially 1; the server gives it too.
@pytest.mark.filterwarnings("ignore:.*will result in a perfect score")
def test_multiclass_equals_sklearn(client: evald.Client) -> None:
    rng = np.random.default_rng(2)
    n, c = 500, 4
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + np.eye(c)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    result = client.metrics(y, proba, average="macro")
    predicted = proba.argmax(axis=1)
    assert result.task == "multiclass"
    assert close(result.accuracy, skm.accuracy_score(y, predicted))
    assert close(result.precision, skm.precision_score(y, predicted, average="macro"))
    assert close(result.recall, skm.recall_score(y, predicted, average="macro"))
    assert close(result.f1, skm.f1_score(y, predicted, average="macro"))
    assert close(result.auc, skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert close(result.log_loss, skm.log_loss(y, proba), eps=1e-9)
    for k, value in result.top_k_accuracy.items():
        assert close(value, skm.top_k_accuracy_score(y, proba, k=k, labels=range(c))), k
    np.testing.assert_array_equal(result.confusion_matrix, skm.confusion_matrix(y, predicted))
    frame = result.to_frame()
    assert list(frame.index) == list(range(c))
    np.testing.assert_allclose(
        frame["f1"], skm.f1_score(y, predicted, average=None), rtol=0, atol=EPS
    )


def test_result_object_gives_attributes_dict_and_frames(client: evald.Client) -> None:
    result = client.metrics([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.4, 0.35, 0.3, 0.1], user_ids=[1] * 6)
    raw = result.to_dict()
    assert raw["auc"] == result.auc == result["auc"]
    assert raw["roc"]["thresholds"][0] is None
    raw["auc"] = -1.0  # a copy: the result is unchanged
    assert result.auc != -1.0
    with pytest.raises(AttributeError, match="no field"):
        _ = result.not_a_field
    scalars = result.to_frame()
    assert scalars.loc["auc", "value"] == result.auc
    assert scalars.loc["confusion.tp", "value"] == 2
    assert result.roc is not None
    curve = result.roc.to_frame()
    assert list(curve.columns) == ["fpr", "tpr", "threshold"]
    assert math.isinf(curve["threshold"].iloc[0])
    fpr, tpr, thresholds = result.roc
    assert len(fpr) == len(tpr) == len(thresholds) == len(curve)
    assert "auc" in repr(result)


def test_pr_curve_is_laid_out_as_sklearn_precision_recall_curve() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.9])
    precision, recall, thresholds = skm.precision_recall_curve(y, score)
    # The answer's pr_curve as the contract lays it out (the server under test may not send it yet).
    answer = {
        "task": "binary",
        "count": 6,
        "pr_curve": {
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "thresholds": thresholds.tolist(),
            "points_dropped": 0,
        },
    }
    curve = evald.MetricsResult(answer).pr
    assert curve is not None
    got_precision, got_recall, got_thresholds = curve
    np.testing.assert_array_equal(got_precision, precision)
    np.testing.assert_array_equal(got_recall, recall)
    np.testing.assert_array_equal(got_thresholds, thresholds)
    frame = curve.to_frame()
    assert len(frame) == len(precision)
    assert math.isnan(frame["threshold"].iloc[-1])


def test_non_finite_scores_are_refused_before_sending(client: evald.Client) -> None:
    with pytest.raises(ValueError, match=r"predictions\[1\] is nan"):
        client.metrics([1, 0], [0.5, float("nan")])
