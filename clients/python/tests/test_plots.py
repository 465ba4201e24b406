"""SVG charts through the client: every route and kind answers an SVG document of the asked
size and title, savable to a file; bad options are the server's problems."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import evald

SVG_NS = "{http://www.w3.org/2000/svg}"
KINDS = ["roc", "pr", "calibration", "scores", "thresholds"]
COMPARE_KINDS = ["roc", "pr", "calibration"]


def data(n: int = 300, seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1), 3)
    b = np.round(np.clip(0.1 * y + rng.uniform(0, 0.9, n), 0, 1), 3)
    users = rng.integers(0, 10, n)
    return y, a, b, users


def parsed(svg: str, width: int = 720, height: int = 480) -> ET.Element:
    """The SVG's root element, checked to be an <svg> of ``width`` x ``height``."""
    assert isinstance(svg, evald.Svg)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert (root.get("width"), root.get("height")) == (str(width), str(height))
    return root


def texts(root: ET.Element) -> list[str]:
    return [(t.text or "").strip() for t in root.iter(f"{SVG_NS}text")]


@pytest.mark.parametrize("kind", KINDS)
def test_plot_of_arrays(client: evald.Client, kind: str) -> None:
    y, score, _, _ = data()
    svg = client.plot(kind, y, score, threshold=0.4)
    root = parsed(svg)
    assert len(list(root.iter())) > 10  # axes, labels, series: not an empty canvas


def test_plot_size_and_title(client: evald.Client, tmp_path: Path) -> None:
    y, score, _, users = data()
    title = "Model A & B <v2>"  # escaped on the wire and in the SVG
    svg = client.plot("roc", y, score, users, width=400, height=300, title=title, confidence=0.9)
    root = parsed(svg, 400, 300)
    assert title in texts(root)
    saved = svg.save(tmp_path / "roc.svg")
    assert saved == tmp_path / "roc.svg"
    assert saved.read_text(encoding="utf-8") == svg
    assert svg._repr_svg_() == svg  # Jupyter shows it inline


@pytest.mark.parametrize("kind", COMPARE_KINDS)
def test_plot_compare(client: evald.Client, kind: str) -> None:
    y, a, b, users = data()
    svg = client.plot_compare(kind, y, a, b, user_ids=users, width=500, title=f"{kind} a vs b")
    root = parsed(svg, 500, 480)
    assert f"{kind} a vs b" in texts(root)


@pytest.mark.parametrize("kind", KINDS)
def test_stream_and_user_plots(client: evald.Client, stream_name: str, kind: str) -> None:
    y, score, _, users = data()
    stream = client.stream(stream_name)
    stream.push(
        {"prediction": score, "label": y, "user_id": users.astype(str)},
        user_id="user_id",
        progress=False,
    )
    parsed(stream.plot(kind, width=640, threshold=0.3, max_points=50), 640)
    user = stream.user_plot("3", kind, height=360, title="user 3")
    assert "user 3" in texts(parsed(user, 720, 360))


def test_plot_errors_are_evald_errors(client: evald.Client, stream_name: str) -> None:
    y, score, _, _ = data(n=20)
    with pytest.raises(evald.EvaldError) as caught:
        client.plot("pie", y, score)
    assert caught.value.status == 404
    assert "roc" in caught.value.extra["valid"]
    with pytest.raises(evald.EvaldError) as caught:
        client.plot("roc", y, score, width=10)
    assert (caught.value.status, caught.value.field) == (422, "width")
    with pytest.raises(evald.EvaldError) as caught:
        client.plot("roc", y[:5], score)  # the metrics body is checked as POST /metrics does
    assert (caught.value.status, caught.value.field) == (422, "labels")
    with pytest.raises(evald.EvaldError) as caught:
        client.plot_compare("scores", y, score, score)  # compare charts: roc, pr, calibration
    assert caught.value.status == 404
    assert caught.value.extra["valid"] == COMPARE_KINDS
    with pytest.raises(evald.EvaldError, match="404"):
        client.stream(stream_name).plot("roc")


def test_async_plots_equal_sync_plots(
    client: evald.Client, server_url: str, stream_name: str
) -> None:
    y, a, b, users = data()
    stream = client.stream(stream_name)
    stream.push({"prediction": a, "label": y, "user_id": users}, user_id="user_id", progress=False)

    async def run() -> list[evald.Svg]:
        async with evald.AsyncClient(server_url) as aclient:
            astream = aclient.stream(stream_name)
            return [
                await aclient.plot("pr", y, a, width=300),
                await aclient.plot_compare("roc", y, a, b, title="t"),
                await astream.plot("calibration"),
                await astream.user_plot(4, "scores"),
            ]

    got = asyncio.run(run())
    assert got == [
        client.plot("pr", y, a, width=300),
        client.plot_compare("roc", y, a, b, title="t"),
        stream.plot("calibration"),
        stream.user_plot(4, "scores"),
    ]
    for svg in got:
        assert isinstance(svg, evald.Svg)
        assert svg.lstrip().startswith("<svg")
