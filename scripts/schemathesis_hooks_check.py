"""Checks of scripts/schemathesis_hooks.py's `_sent_query_is_valid`, run by scripts/schemathesis
before the conformance run, so that the filter that drops failures cannot drop a real one unseen.

Usage: python3 scripts/schemathesis_hooks_check.py openapi/openapi.yaml
"""

import sys
from pathlib import Path
from types import SimpleNamespace

import schemathesis
from schemathesis.core.parameters import ParameterLocation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schemathesis_hooks import _sent_query_is_valid  # noqa: E402

NEGATIVE = SimpleNamespace(mode=SimpleNamespace(is_negative=True))
POSITIVE = SimpleNamespace(mode=SimpleNamespace(is_negative=False))

# Sent as valid requests: schemathesis's negative value did not reach the server as one. The
# first is the request of CI's failure (`confidence` became {}, `thresholds` became 0.0).
VALID_AS_SENT = [
    "thresholds=0.0",
    "",
    "thresholds=0.1,0.5&confidence=0.9",
    "thresholds=&tpr_at_fpr=",
    "max_points=none",
    "max_points=5&drop_intermediate=false&strategy=quantile",
]
# Invalid as sent: the failure must stay.
INVALID_AS_SENT = [
    "confidence=1.5",
    "confidence=abc",
    "thresholds=a",
    "thresholds=0.1,x",
    "thresholds=,",
    "tpr_at_fpr=0.1,",
    "thresholds=0.1&thresholds=0.2",
    "unknown=1",
    "max_points=1",
    "n_bins=0",
    "n_bins=1.5",
    "drop_intermediate=yes",
    "strategy=median",
    "tpr_at_fpr=0.1,2",
]


def main(openapi):
    operation = schemathesis.openapi.from_path(openapi)["/streams/{name}/metrics"]["GET"]

    def case(components):
        return SimpleNamespace(meta=SimpleNamespace(components=components), operation=operation)

    query_only = case({ParameterLocation.QUERY: NEGATIVE, ParameterLocation.PATH: POSITIVE})
    path_too = case({ParameterLocation.QUERY: NEGATIVE, ParameterLocation.PATH: NEGATIVE})
    wrong = []
    for query in VALID_AS_SENT:
        url = f"http://127.0.0.1/streams/a/metrics?{query}"
        if not _sent_query_is_valid(query_only, url):
            wrong.append(f"valid as sent, but the failure would stay: ?{query}")
        if _sent_query_is_valid(path_too, url):
            wrong.append(f"a negative path too, but the failure would be dropped: ?{query}")
    for query in INVALID_AS_SENT:
        if _sent_query_is_valid(query_only, f"http://127.0.0.1/streams/a/metrics?{query}"):
            wrong.append(f"invalid as sent, but the failure would be dropped: ?{query}")
    if wrong:
        sys.exit("schemathesis_hooks_check:\n  " + "\n  ".join(wrong))
    print(f"schemathesis_hooks_check: {len(VALID_AS_SENT)} valid and {len(INVALID_AS_SENT)} invalid queries read right")


if __name__ == "__main__":
    main(sys.argv[1])
