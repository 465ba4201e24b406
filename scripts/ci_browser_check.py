#!/usr/bin/env python3
"""Checks of the dashboard as headless Chromium rendered it (scripts/ci-browser).

Usage:
  ci_browser_check.py records OUT SEED NOISE      write NDJSON records for a stream
  ci_browser_check.py list DOM BASE STREAM        the stream list shows the JSON AUC
  ci_browser_check.py stream DOM BASE STREAM USER  the stream page shows its plots and the user
  ci_browser_check.py broken DOM                  the page of a throwing script is caught
  ci_browser_check.py png FILE                    FILE is a non-blank PNG screenshot
  ci_browser_check.py compare-body OUT             write a POST /metrics/compare body

DOM is the output of `chromium --dump-dom`; BASE the server URL. Standard
library only. Every check exits non-zero with a message naming what failed.
"""
import json
import random
import sys
import urllib.request
import zlib
from html.parser import HTMLParser


class Dom(HTMLParser):
    """Elements with their attributes and text, in document order."""

    def __init__(self, html):
        super().__init__()
        self.elements = []
        self.stack = []
        self.root_attrs = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        if tag == "html":
            self.root_attrs = element["attrs"]
        self.elements.append(element)
        if tag not in ("img", "input", "meta", "link", "br"):
            self.stack.append(element)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self.stack:
            element["text"] += data

    def find(self, tag=None, **attrs):
        return [
            e
            for e in self.elements
            if (tag is None or e["tag"] == tag)
            and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def fail(message):
    print(f"ci-browser: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def load(path):
    with open(path, encoding="utf-8") as f:
        dom = Dom(f.read())
    errors = dom.root_attrs.get("data-js-errors")
    if errors:
        texts = [e["text"].strip() for e in dom.find(id="js-errors")]
        fail(f"{path}: {errors} JavaScript error(s) on the page: {texts}")
    if not dom.find("body", data_ready="1"):
        fail(f"{path}: the page never finished (no <body data-ready=1>): did its script run?")
    return dom


def field_value(dom, scope, field, path):
    cells = [e for e in scope if e["tag"] == "td" and e["attrs"].get("data-field") == field]
    if not cells or "data-value" not in cells[0]["attrs"]:
        fail(f"{path}: no {field} cell with a data-value")
    return float(cells[0]["attrs"]["data-value"])


def check_list(path, base, stream):
    dom = load(path)
    rows = dom.find("tr", data_stream=stream)
    if not rows:
        fail(f"{path}: the stream list has no row for {stream}")
    start = dom.elements.index(rows[0])
    row = dom.elements[start : start + 12]
    shown = field_value(dom, row, "auc", path)
    expected = get_json(f"{base}/streams/{stream}/metrics")["auc"]
    if shown != expected:
        fail(f"{path}: the dashboard shows AUC {shown} for {stream} but the JSON API gives {expected}")
    print(f"ci-browser: list shows {stream} with AUC {shown} (the JSON API: {expected})")


def check_stream(path, base, stream, user):
    dom = load(path)
    loaded = {e["attrs"].get("data-kind") for e in dom.find("img", data_loaded="1")}
    failed = [(e["attrs"].get("data-kind"), e["attrs"].get("data-failed")) for e in dom.elements if "data-failed" in e["attrs"]]
    if failed:
        fail(f"{path}: plots failed: {failed}")
    for kind in ("roc", "pr", "calibration", "scores"):
        if kind not in loaded:
            fail(f"{path}: the {kind} plot did not load (loaded: {sorted(k for k in loaded if k)})")
    blocks = dom.find("div", data_user=user)
    if not blocks:
        errors = [e["text"] for e in dom.elements if "data-user-error" in e["attrs"]]
        fail(f"{path}: the lookup of user {user} shows nothing ({errors})")
    start = dom.elements.index(blocks[0])
    shown = field_value(dom, dom.elements[start:], "auc", path)
    expected = get_json(f"{base}/streams/{stream}/users/{user}/metrics")["auc"]
    if shown != expected:
        fail(f"{path}: user {user} shows AUC {shown} but the JSON API gives {expected}")
    if "user-roc" not in loaded:
        fail(f"{path}: the ROC plot of user {user} did not load")
    print(f"ci-browser: stream page shows {sorted(k for k in loaded if k)}; user {user} AUC {shown}")


def check_broken(path):
    with open(path, encoding="utf-8") as f:
        dom = Dom(f.read())
    if not dom.root_attrs.get("data-js-errors"):
        fail(f"{path}: a page whose script throws was not caught by the error hook")
    print("ci-browser: self-test: a throwing script is reported on the page")


def check_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    # A blank page compresses to almost nothing; a chart does not.
    if len(data) < 8000:
        fail(f"{path} has only {len(data)} bytes: is it blank?")
    zlib.crc32(data)


def write_records(out, seed, noise):
    rng = random.Random(int(seed))
    noise = float(noise)
    with open(out, "w", encoding="ascii") as f:
        for i in range(3000):
            label = 1 if rng.random() < 0.35 else 0
            score = min(1.0, max(0.0, rng.gauss(0.35 + 0.3 * label, noise)))
            f.write(json.dumps({"prediction": round(score, 4), "label": label, "user_id": f"u{i % 25}"}) + "\n")


def write_compare_body(out):
    """Two models scoring the same 2,000 records, b sharper than a."""
    rng = random.Random(5)
    labels, a, b = [], [], []
    for _ in range(2000):
        label = 1 if rng.random() < 0.35 else 0
        signal = rng.gauss(0.0, 1.0)
        labels.append(label)
        a.append(round(1 / (1 + 2.718281828 ** -(0.8 * label - 0.4 + signal)), 4))
        b.append(round(1 / (1 + 2.718281828 ** -(1.6 * label - 0.8 + 0.7 * signal + 0.7 * rng.gauss(0.0, 1.0))), 4))
    with open(out, "w", encoding="ascii") as f:
        json.dump({"labels": labels, "predictions_a": a, "predictions_b": b}, f)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    {
        "records": write_records,
        "list": check_list,
        "stream": check_stream,
        "broken": check_broken,
        "png": check_png,
        "compare-body": write_compare_body,
    }[command](*args)


if __name__ == "__main__":
    main()
