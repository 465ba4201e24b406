"""Summary of a schemathesis NDJSON report (scripts/schemathesis): requests sent, their statuses
per operation, and the failures of each check.

Usage: python3 scripts/schemathesis_summary.py REPORT.ndjson
"""

import collections
import json
import sys


def main(path):
    requests = 0
    statuses = collections.defaultdict(collections.Counter)
    failures = collections.Counter()
    outcomes = collections.Counter()
    with open(path, encoding="utf-8") as report:
        for line in report:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if finished is None:
                continue
            recorder = finished["recorder"]
            for interaction in recorder.get("interactions", {}).values():
                response = interaction.get("response")
                requests += 1
                statuses[recorder["label"]][response["status_code"] if response else "no response"] += 1
            for results in recorder.get("checks", {}).values():
                for result in results:
                    outcomes[result["status"]] += 1
                    if result["status"] == "failure":
                        failures[result["name"]] += 1
    print(f"requests: {requests}")
    for operation in sorted(statuses):
        counts = ", ".join(f"{status}: {n}" for status, n in sorted(statuses[operation].items(), key=str))
        print(f"  {operation}: {counts}")
    print("check results: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    if failures:
        print("failures by check: " + ", ".join(f"{k}: {v}" for k, v in sorted(failures.items())))
    else:
        print("failures by check: none")


if __name__ == "__main__":
    main(sys.argv[1])
