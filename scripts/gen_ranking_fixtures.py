#!/usr/bin/env python3
"""Writes tests/fixtures/ranking_ndcg_cases.json: per-user NDCG@k of
POST /metrics `ranking` as scikit-learn's ndcg_score computes it.

Run by hand from the repository root (cargo test never runs Python):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scikit-learn
    /tmp/venv/bin/python scripts/gen_ranking_fixtures.py

Deterministic (seeded). Scores are distinct within each user (ndcg_score
averages the DCG over tied scores; evald keeps ties in input order), rounded
to six decimals so the JSON text is the double scikit-learn saw. The
reference NDCG@k is the mean over the users with at least one positive of
ndcg_score([labels_u], [scores_u], k=k); users without one are skipped (and
counted) by evald, so they are left out of the mean here. Every user has at
least two records (ndcg_score needs two).
"""

import json
import pathlib

import numpy as np
import sklearn
from sklearn.metrics import ndcg_score

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/ranking_ndcg_cases.json"


def case(rng, n_users, max_records, ks, positive_rate):
    predictions, labels, user_ids = [], [], []
    per_user = []
    for u in range(n_users):
        n = int(rng.integers(2, max_records + 1))
        scores = np.round(rng.permutation(np.linspace(0.001, 0.999, 997))[:n], 6)
        ys = (rng.random(n) < positive_rate).astype(int)
        per_user.append((scores, ys))
        predictions += scores.tolist()
        labels += ys.tolist()
        user_ids += [f"user-{u}"] * n
    # interleave the users' records so grouping by user is exercised
    order = rng.permutation(len(predictions))
    body = {
        "predictions": [predictions[i] for i in order],
        "labels": [labels[i] for i in order],
        "user_ids": [user_ids[i] for i in order],
        "ranking": {"k": ks},
    }
    contributing = [(s, y) for s, y in per_user if y.sum() > 0]
    ndcg = {
        str(k): float(np.mean([ndcg_score([y], [s], k=k) for s, y in contributing]))
        for k in ks
    }
    return {
        "input": body,
        "ndcg": ndcg,
        "users": n_users,
        "users_skipped": n_users - len(contributing),
    }


def main():
    rng = np.random.default_rng(20260514)
    cases = [
        case(rng, 40, 12, [1, 3, 5, 10], 0.3),
        case(rng, 15, 30, [2, 7, 20, 50], 0.1),
        case(rng, 60, 4, [1, 2, 4], 0.5),
    ]
    doc = {
        "generator": "scripts/gen_ranking_fixtures.py",
        "reference": f"scikit-learn {sklearn.__version__} ndcg_score",
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main()
