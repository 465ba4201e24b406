#!/usr/bin/env python3
"""Writes tests/fixtures/eval_cases.json: binary POST /metrics inputs with the
numbers scikit-learn gives for the fields of "Evaluation beyond the basics".

Run by hand (cargo test never runs Python), in a venv with numpy and
scikit-learn:

    python3 scripts/gen_eval_fixtures.py

Deterministic (seeded). References: average_precision_score,
precision_recall_curve (drop_intermediate both ways), log_loss,
brier_score_loss, matthews_corrcoef, balanced_accuracy_score,
cohen_kappa_score, calibration_curve (uniform and quantile; unweighted only,
it takes no weights) and roc_auc_score(max_fpr=...). Values scikit-learn
defines but the service leaves undefined (mcc with one class, ...) are not
written. Weights are multiples of 0.25 so cumulative sums are exact and
drop_intermediate cannot flip on summation order; zero weights are dropped
before calling scikit-learn, as the service drops them.
"""

import json
import math
import pathlib
import warnings

import numpy as np
import sklearn
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    cohen_kappa_score,
    log_loss,
    matthews_corrcoef,
    precision_recall_curve,
    roc_auc_score,
)

warnings.simplefilter("ignore")
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "eval_cases.json"
rng = np.random.default_rng(20261203)


def nums(xs):
    return [float(x) for x in xs]


def make_scores(n, kind):
    if kind == "ties":
        return np.round(rng.integers(0, 11, n) / 10.0, 1)
    if kind == "grid":
        return rng.integers(0, 5, n) / 4.0
    return rng.random(n)


def case(name, n, kind, weighted, threshold=0.5, beta=1.0, n_bins=10, strategy="uniform",
         max_fpr=None, drop=False, pos_rate=0.4):
    s = make_scores(n, kind)
    y = (rng.random(n) < np.clip(s * 0.6 + pos_rate * 0.4, 0, 1)).astype(int)
    if y.sum() == 0:
        y[0] = 1
    if y.sum() == n:
        y[0] = 0
    w = rng.integers(0, 9, n) / 4.0 if weighted else None
    if w is not None:
        w[0] = max(w[0], 0.25)
        w[1] = max(w[1], 0.25)
    keep = np.ones(n, bool) if w is None else w != 0
    ys, ss, ws = y[keep], s[keep], (None if w is None else w[keep])
    pred = (ss >= threshold).astype(int)
    expected = {
        "average_precision": float(average_precision_score(ys, ss, sample_weight=ws)),
        "log_loss": float(log_loss(ys, ss, sample_weight=ws, labels=[0, 1])),
        "brier_score": float(brier_score_loss(ys, ss, sample_weight=ws)),
    }
    p, r, t = precision_recall_curve(ys, ss, sample_weight=ws, drop_intermediate=drop)
    expected["pr_curve"] = {"precision": nums(p), "recall": nums(r), "thresholds": nums(t),
                            "points_dropped": 0}
    if len(np.unique(pred)) == 2:
        expected["mcc"] = float(matthews_corrcoef(ys, pred, sample_weight=ws))
    expected["balanced_accuracy"] = float(balanced_accuracy_score(ys, pred, sample_weight=ws))
    kappa = cohen_kappa_score(ys, pred, sample_weight=ws)
    if not math.isnan(kappa):
        expected["cohen_kappa"] = float(kappa)
    if w is None:
        pt, pp = calibration_curve(ys, ss, n_bins=n_bins, strategy=strategy)
        expected["calibration"] = {"prob_true": nums(pt), "prob_pred": nums(pp),
                                   "strategy": strategy, "n_bins": n_bins}
    if max_fpr is not None:
        expected["partial_auc"] = float(roc_auc_score(ys, ss, sample_weight=ws, max_fpr=max_fpr))
    body = {"predictions": nums(s), "labels": [int(v) for v in y], "threshold": threshold,
            "beta": beta, "pr": {"max_points": None, "drop_intermediate": drop},
            "calibration": {"n_bins": n_bins, "strategy": strategy}}
    if w is not None:
        body["sample_weights"] = nums(w)
    if max_fpr is not None:
        body["max_fpr"] = max_fpr
    return {"name": name, "input": body, "expected": expected}


cases = []
for i, (n, kind) in enumerate([(7, "ties"), (40, "ties"), (200, "grid"), (300, "cont"),
                               (1000, "ties"), (57, "cont")]):
    for weighted in (False, True):
        for strategy in ("uniform", "quantile"):
            for drop in (False, True):
                tag = f"{kind}-{n}-{'w' if weighted else 'u'}-{strategy}-{'drop' if drop else 'full'}"
                cases.append(case(tag, n, kind, weighted, threshold=[0.5, 0.3, 0.7][i % 3],
                                  n_bins=[10, 5, 3, 7][i % 4], strategy=strategy, drop=drop,
                                  max_fpr=[0.1, 0.25, 0.5, 1.0, 0.05, 0.33][i]))

# Weighted calibration: calibration_curve takes no weights, so integer
# weights are checked against the records repeated that many times.
for i, strategy in enumerate(("uniform", "quantile", "quantile")):
    n = [30, 80, 9][i]
    s = make_scores(n, ["cont", "ties", "grid"][i])
    y = (rng.random(n) < s).astype(int)
    y[0], y[1] = 0, 1
    w = rng.integers(0, 4, n).astype(float)
    w[0], w[1] = 1.0, 2.0
    reps = w.astype(int)
    pt, pp = calibration_curve(np.repeat(y, reps), np.repeat(s, reps), n_bins=4, strategy=strategy)
    cases.append({
        "name": f"calibration-repeated-{strategy}-{n}",
        "input": {"predictions": nums(s), "labels": [int(v) for v in y], "sample_weights": nums(w),
                  "calibration": {"n_bins": 4, "strategy": strategy}},
        "expected": {"calibration": {"prob_true": nums(pt), "prob_pred": nums(pp),
                                     "strategy": strategy, "n_bins": 4}},
    })

meta = {"generator": "scripts/gen_eval_fixtures.py", "sklearn": sklearn.__version__,
        "numpy": np.__version__}
OUT.write_text(json.dumps({"meta": meta, "cases": cases}, separators=(",", ":")) + "\n")
print(f"wrote {len(cases)} cases to {OUT}")
