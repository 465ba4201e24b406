#!/usr/bin/env python3
"""scikit-learn vs the evald core on the same 1M-record, 20k-user data, side by side.

Python side: sklearn roc_auc_score + roc_curve + a numpy per-user AUC (one
argsort per user, rank-sum with ties as one half). Rust side: the criterion
bench `metrics_1m/core_confusion_roc_auc_gauc` (confusion + ROC + AUC + GAUC),
run by this script. Prints both medians and the ratio.

Usage (from the repository root):
    CARGO_TARGET_DIR=target python3 scripts/bench_metrics_sklearn.py
Needs numpy and scikit-learn (pip install scikit-learn).
"""

import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score, roc_curve

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from metrics_bench_data import generate  # noqa: E402

REPEATS = 3


def per_user_auc(scores, labels, users):
    """Impression-weighted GAUC with numpy: group by user, then per user a
    stable argsort and the tie-aware rank-sum (Mann-Whitney) AUC."""
    order = np.argsort(users, kind="stable")
    u_sorted = users[order]
    bounds = np.flatnonzero(np.diff(u_sorted)) + 1
    total = weighted = 0.0
    for idx in np.split(order, bounds):
        y = labels[idx]
        pos = int(y.sum())
        neg = len(y) - pos
        if pos == 0 or neg == 0:
            continue
        s = scores[idx]
        srt = np.sort(s)
        # average rank of each score (ties share the mean rank), 1-based
        left = np.searchsorted(srt, s, side="left")
        right = np.searchsorted(srt, s, side="right")
        ranks = (left + right + 1) / 2.0
        auc = (ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg)
        total += len(y)
        weighted += len(y) * auc
    return weighted / total


def python_once(scores, labels, users):
    t0 = time.perf_counter()
    auc = roc_auc_score(labels, scores)
    roc_curve(labels, scores)
    gauc = per_user_auc(scores, labels, users)
    return time.perf_counter() - t0, auc, gauc


def rust_median_seconds():
    cmd = ["cargo", "bench", "--bench", "metrics", "--", "core_confusion_roc_auc_gauc"]
    print("running:", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, check=True).stdout
    m = re.search(r"core_confusion_roc_auc_gauc\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", out)
    if not m:
        sys.exit("could not find the criterion estimate in:\n" + out)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}[unit]


def main():
    scores, labels, users = generate()
    print(f"data: {len(scores)} records, {len(np.unique(users))} users, "
          f"{int(labels.sum())} positives; scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    runs = [python_once(scores, labels, users) for _ in range(REPEATS)]
    py = statistics.median(r[0] for r in runs)
    print(f"python: auc {runs[0][1]:.12f}  gauc {runs[0][2]:.12f}")
    print(f"python sklearn roc_auc_score + roc_curve + numpy per-user AUC: median of {REPEATS}: {py * 1e3:.1f} ms")
    rust = rust_median_seconds()
    print(f"rust core confusion + ROC + AUC + GAUC (criterion median): {rust * 1e3:.1f} ms")
    print(f"ratio python / rust: {py / rust:.1f}x")


if __name__ == "__main__":
    main()
