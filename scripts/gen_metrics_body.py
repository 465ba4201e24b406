#!/usr/bin/env python3
"""Writes the deterministic ~20 MB POST /metrics bench body.

Usage: python3 scripts/gen_metrics_body.py OUT.json
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from metrics_bench_data import body_json, generate  # noqa: E402

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/metrics_body.json")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(body_json(*generate()))
print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
