#!/usr/bin/env python3
"""Writes NDJSON stream records for scripts/bench-streams.

Usage: gen_stream_records.py OUT RECORDS USERS [SEED]

Each line is {"prediction": p, "label": l, "user_id": "uNNNNN"} with p a score
with 4 decimals and l drawn so that higher scores are more often positive
(a realistic AUC around 0.75), users uniform over USERS ids.
"""
import sys

import numpy as np


def main() -> None:
    out, records, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    with open(out, "w", encoding="ascii") as f:
        for start in range(0, records, chunk):
            n = min(chunk, records - start)
            scores = np.round(rng.random(n), 4)
            labels = (rng.random(n) < 0.2 + 0.6 * scores).astype(np.int8)
            user = rng.integers(0, users, n)
            lines = [
                f'{{"prediction":{s:.4f},"label":{l},"user_id":"u{u}"}}\n'
                for s, l, u in zip(scores.tolist(), labels.tolist(), user.tolist())
            ]
            f.write("".join(lines))


if __name__ == "__main__":
    main()
