"""Deterministic bench data shared by the metrics bench scripts.

1,000,000 binary predictions from 20,000 users, by the same splitmix64 recipe
as benches/metrics.rs (so Rust and Python time the same records):
  h_k(i) = splitmix64(4 i + k)
  score  = (h_0(i) >> 11) % 1_000_000 / 1e6
  label  = (h_1(i) >> 11) / 2^53 < score
  user   = (h_2(i) >> 11) % 20_000
"""

import numpy as np

N = 1_000_000
USERS = 20_000


def splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def generate(n=N, users=USERS):
    """(scores float64, labels int8, users int64)."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64) * np.uint64(4)
        h = [splitmix64(i + np.uint64(k)) >> np.uint64(11) for k in range(3)]
    scores = (h[0] % np.uint64(1_000_000)).astype(np.float64) / 1e6
    labels = (h[1].astype(np.float64) / float(1 << 53) < scores).astype(np.int8)
    user = (h[2] % np.uint64(users)).astype(np.int64)
    return scores, labels, user


def body_json(scores, labels, users):
    """The POST /metrics body for the records (about 20 MB)."""
    return (
        '{"predictions":[' + ",".join(map(repr, scores.tolist()))
        + '],"labels":[' + ",".join(map(str, labels.tolist()))
        + '],"user_ids":[' + ",".join(f'"u{u}"' for u in users.tolist())
        + "]}"
    )
