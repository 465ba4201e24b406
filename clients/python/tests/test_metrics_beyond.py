"""The extended binary fields of POST /metrics as typed attributes, equal to scikit-learn
wherever both compute the same thing (random data with ties; weighted and not).

Reference: scikit-learn (the version installed next to these tests). Tolerances: 1e-12 absolute,
1e-9 for the sums of logarithms (log loss, normalized entropy).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest
from sklearn import calibration as skc
from sklearn import metrics as skm

import evald

EPS = 1e-12
LOG_EPS = 1e-9

Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]


def binary_data(n: int = 2000, seed: int = 17) -> Arrays:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    # Probabilities in [0, 1], rounded so that many scores tie; 0 and 1 occur (clipped log loss).
    score = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0, 1), 2)
    users = rng.integers(0, 40, n)
    return y, score, users


def close(actual: float | None, expected: float, eps: float = EPS) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=0, abs_tol=eps)


@pytest.mark.parametrize("weighted", [False, True])
def test_extended_scores_equal_sklearn(client: evald.Client, weighted: bool) -> None:
    y, score, _ = binary_data()
    w = np.random.default_rng(5).uniform(0, 3, len(y)) if weighted else None
    threshold, max_fpr = 0.45, 0.2
    m = client.metrics(y, score, sample_weight=w, threshold=threshold, max_fpr=max_fpr)
    predicted = (score >= threshold).astype(int)
    assert close(m.average_precision, skm.average_precision_score(y, score, sample_weight=w))
    assert close(m.log_loss, skm.log_loss(y, score, sample_weight=w), LOG_EPS)
    assert close(m.brier_score, skm.brier_score_loss(y, score, sample_weight=w))
    assert close(m.mcc, skm.matthews_corrcoef(y, predicted, sample_weight=w))
    assert close(m.balanced_accuracy, skm.balanced_accuracy_score(y, predicted, sample_weight=w))
    assert close(m.cohen_kappa, skm.cohen_kappa_score(y, predicted, sample_weight=w))
    assert close(m.specificity, skm.recall_score(y, predicted, pos_label=0, sample_weight=w))
    assert close(m.npv, skm.precision_score(y, predicted, pos_label=0, sample_weight=w))
    assert close(m.partial_auc, skm.roc_auc_score(y, score, max_fpr=max_fpr, sample_weight=w))
    weights = np.ones(len(y)) if w is None else w
    assert close(m.calibration_ratio, float(np.sum(weights * score) / np.sum(weights * y)))
    q = float(np.average(y, weights=weights))
    entropy = -q * math.log(q) - (1 - q) * math.log(1 - q)
    assert close(m.normalized_entropy, skm.log_loss(y, score, sample_weight=w) / entropy, LOG_EPS)


def test_pr_curve_equals_sklearn_precision_recall_curve(client: evald.Client) -> None:
    y, score, _ = binary_data(seed=3)
    pr = client.metrics(y, score, pr={"max_points": None}).pr
    assert pr is not None
    precision, recall, thresholds = skm.precision_recall_curve(y, score)
    assert isinstance(pr.precision, np.ndarray)
    assert isinstance(pr.thresholds, np.ndarray)
    np.testing.assert_allclose(pr.precision, precision, rtol=0, atol=EPS)
    np.testing.assert_allclose(pr.recall, recall, rtol=0, atol=EPS)
    np.testing.assert_array_equal(pr.thresholds, thresholds)
    assert pr.points_dropped == 0
    thinned = client.metrics(y, score, pr={"max_points": 10}).pr
    assert thinned is not None
    assert len(thinned.precision) == 10
    assert thinned.points_dropped == len(precision) - 10


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_equals_sklearn_calibration_curve(client: evald.Client, strategy: str) -> None:
    y, score, _ = binary_data(seed=4)
    calibration = client.metrics(y, score, calibration={"n_bins": 8, "strategy": strategy})
    curve = calibration.calibration
    assert curve is not None
    prob_true, prob_pred = skc.calibration_curve(y, score, n_bins=8, strategy=strategy)
    got_true, got_pred = curve
    assert isinstance(got_true, np.ndarray)
    np.testing.assert_allclose(got_true, prob_true, rtol=0, atol=EPS)
    np.testing.assert_allclose(got_pred, prob_pred, rtol=0, atol=EPS)
    assert curve.strategy == strategy
    assert curve.n_bins == 8
    counts = np.asarray(curve.counts)
    assert counts.sum() == len(y)
    gaps = np.abs(prob_true - prob_pred)
    assert close(curve.ece, float(np.sum(counts / counts.sum() * gaps)))
    assert close(curve.mce, float(gaps.max()))
    frame = curve.to_frame()
    assert list(frame.columns) == ["prob_true", "prob_pred", "count"]
    assert len(frame) == len(prob_true)


def test_threshold_sweep_tpr_at_fpr_and_best_threshold(client: evald.Client) -> None:
    y, score, _ = binary_data(seed=8)
    thresholds, fprs = [0.7, 0.2, 0.5], [0.0, 0.05, 0.3, 1.0]
    m = client.metrics(y, score, thresholds=thresholds, tpr_at_fpr=fprs, beta=2.0)
    rows = m.at_thresholds
    assert rows is not None
    assert [r.threshold for r in rows] == thresholds  # request order
    for row in rows:
        predicted = (score >= row.threshold).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
        assert (row.tp, row.fp, row.tn, row.fn) == (tp, fp, tn, fn)
        assert close(row.precision, skm.precision_score(y, predicted))
        assert close(row.recall, skm.recall_score(y, predicted))
        assert close(row.f_beta, skm.fbeta_score(y, predicted, beta=2.0))
        assert close(row.fpr, fp / (fp + tn))
        assert close(row.specificity, tn / (fp + tn))
    fpr, tpr, roc_thresholds = skm.roc_curve(y, score, drop_intermediate=False)
    asked = m.tpr_at_fpr
    assert asked is not None
    assert [a.fpr for a in asked] == fprs
    for entry in asked:
        best = tpr[fpr <= entry.fpr].max()
        first = int(np.argmax((fpr <= entry.fpr) & (tpr == best)))
        assert close(entry.tpr, float(best))
        expected = None if first == 0 else float(roc_thresholds[first])
        assert entry.threshold == expected
    best_threshold = m.best_threshold
    assert best_threshold is not None
    assert best_threshold.youden_j is not None
    assert close(best_threshold.youden_j.value, float(np.max(tpr - fpr)))
    assert best_threshold.f_beta is not None
    at_best = (score >= best_threshold.f_beta.threshold).astype(int)
    assert close(best_threshold.f_beta.value, skm.fbeta_score(y, at_best, beta=2.0))
    precision, recall, _ = skm.precision_recall_curve(y, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        f2 = 5 * precision * recall / (4 * precision + recall)
    assert close(best_threshold.f_beta.value, float(np.nanmax(f2)))


def test_intervals_auc_ci_and_gauc(client: evald.Client) -> None:
    y, score, users = binary_data(seed=9)
    m = client.metrics(y, score, user_ids=users, confidence=0.9)
    z = NormalDist().inv_cdf(0.95)
    ci = m.auc_ci
    assert ci is not None
    assert ci.level == 0.9
    assert ci.method == "delong"
    assert ci.std_error is not None
    assert m.auc is not None
    assert close(ci.lower, max(0.0, m.auc - z * ci.std_error), 1e-9)
    assert close(ci.upper, min(1.0, m.auc + z * ci.std_error), 1e-9)
    gauc = m.gauc
    assert gauc is not None
    assert gauc.value is not None
    assert gauc.std_error is not None
    assert close(gauc.lower, max(0.0, gauc.value - z * gauc.std_error), 1e-9)
    assert close(gauc.upper, min(1.0, gauc.value + z * gauc.std_error), 1e-9)
    wider = client.metrics(y, score, user_ids=users, confidence=0.99).auc_ci
    assert wider is not None
    assert wider.std_error == ci.std_error
    assert wider.lower is not None
    assert ci.lower is not None
    assert wider.lower < ci.lower


def test_ranking_metrics_per_user(client: evald.Client) -> None:
    y, score, users = binary_data(n=600, seed=10)
    score = score + np.arange(len(y)) * 1e-7  # no ties: the order is the scores' alone
    ranking = client.metrics(y, score, user_ids=users, ranking={"k": [1, 5]}).ranking
    assert ranking is not None
    assert ranking.k == [1, 5]
    hits: dict[int, list[float]] = {1: [], 5: []}
    recalls: dict[int, list[float]] = {1: [], 5: []}
    reciprocal = []
    for user in np.unique(users):
        labels = y[users == user][np.argsort(-score[users == user], kind="stable")]
        if labels.sum() == 0:
            continue
        for k in (1, 5):
            hits[k].append(float(labels[:k].sum() > 0))
            recalls[k].append(labels[:k].sum() / labels.sum())
        reciprocal.append(1 / (int(np.argmax(labels)) + 1))
    assert ranking.users == len(np.unique(users))
    assert ranking.users_skipped == ranking.users - len(reciprocal)
    for k in (1, 5):
        assert close(ranking.hit_rate[k], float(np.mean(hits[k])))
        assert close(ranking.recall[k], float(np.mean(recalls[k])))
    assert close(ranking.mrr, float(np.mean(reciprocal)))
    frame = ranking.to_frame()
    assert list(frame.index) == [1, 5]
    assert frame.loc[5, "hit_rate"] == ranking.hit_rate[5]


def test_fields_absent_unless_asked_and_none_when_undefined(client: evald.Client) -> None:
    plain = client.metrics([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.4])
    assert plain.at_thresholds is None
    assert plain.tpr_at_fpr is None
    assert plain.partial_auc is None
    assert plain.ranking is None
    assert plain.gauc is None
    one_class = client.metrics([1, 1, 1], [0.9, 0.2, 0.6])
    assert one_class.mcc is None
    assert one_class.balanced_accuracy is None
    assert one_class.auc_ci is None
    assert one_class.warnings
    # Scores outside [0, 1] are not probabilities: no log loss, Brier or calibration.
    logits = client.metrics([1, 0, 1, 0], [2.5, -1.0, 0.3, -0.2])
    assert logits.log_loss is None
    assert logits.brier_score is None
    assert logits.calibration is None
    assert logits.average_precision is not None


def test_stream_metrics_take_the_options_as_query_parameters(
    client: evald.Client, stream_name: str
) -> None:
    y, score, users = binary_data(n=500, seed=12)
    stream = client.stream(stream_name)
    stream.push(
        {"prediction": score, "label": y, "user_id": users.astype(str)},
        user_id="user_id",
        progress=False,
    )
    options = {
        "thresholds": [0.3, 0.6],
        "tpr_at_fpr": [0.1],
        "max_fpr": 0.3,
        "n_bins": 5,
        "strategy": "quantile",
        "confidence": 0.8,
    }
    streamed = stream.metrics(**options)
    one_shot = client.metrics(
        y,
        score,
        user_ids=users.astype(str),
        thresholds=options["thresholds"],
        tpr_at_fpr=options["tpr_at_fpr"],
        max_fpr=0.3,
        calibration={"n_bins": 5, "strategy": "quantile"},
        confidence=0.8,
    )
    assert streamed.at_thresholds == one_shot.at_thresholds
    assert streamed.tpr_at_fpr == one_shot.tpr_at_fpr
    assert streamed.partial_auc == pytest.approx(one_shot.partial_auc, abs=EPS)
    assert streamed.calibration is not None
    assert one_shot.calibration is not None
    assert streamed.calibration.strategy == "quantile"
    np.testing.assert_allclose(
        streamed.calibration.prob_true, one_shot.calibration.prob_true, rtol=0, atol=EPS
    )
    assert streamed.auc_ci is not None
    assert one_shot.auc_ci is not None
    assert streamed.auc_ci.level == 0.8
    assert streamed.auc_ci.lower == pytest.approx(one_shot.auc_ci.lower, abs=EPS)
    assert streamed.auc_error_bound == 0
    assert streamed.confusion_error_bound == 0
    assert streamed.gauc_error_bound == 0
    user = stream.user(str(users[0]))
    assert user.user_id == str(users[0])
