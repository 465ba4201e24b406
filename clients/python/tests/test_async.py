"""AsyncClient: the same calls as Client, awaited, against the real server."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

import evald


def test_async_metrics_equal_sync_metrics(client: evald.Client, server_url: str) -> None:
    rng = np.random.default_rng(4)
    y, score = rng.integers(0, 2, 200), rng.uniform(size=200)

    async def run() -> list[evald.MetricsResult]:
        async with evald.AsyncClient(server_url) as aclient:
            return list(await asyncio.gather(*(aclient.metrics(y, score) for _ in range(4))))

    answers = asyncio.run(run())
    assert all(a.to_dict() == client.metrics(y, score).to_dict() for a in answers)


def test_async_stream_push_metrics_user_delete(server_url: str, stream_name: str) -> None:
    df = pd.DataFrame(
        {"score": [0.9, 0.2, 0.6, 0.4], "click": [1, 0, 1, 0], "uid": ["a", "a", "b", "b"]}
    )

    async def run() -> tuple[evald.PushResult, evald.MetricsResult, evald.MetricsResult]:
        async with evald.AsyncClient(server_url) as aclient:
            stream = aclient.stream(stream_name)
            pushed = await stream.push(
                df, prediction="score", label="click", user_id="uid", progress=False
            )
            metrics = await stream.metrics(threshold=0.5)
            user = await stream.user("b")
            await stream.delete()
            with pytest.raises(evald.EvaldError, match="404"):
                await stream.metrics()
            return pushed, metrics, user

    pushed, metrics, user = asyncio.run(run())
    assert pushed.accepted == 4
    assert pushed.users == 2
    assert metrics.auc == 1.0
    assert metrics.count == 4
    assert user.count == 2


def test_async_errors_and_ops(server_url: str) -> None:
    async def run() -> evald.ArrayResult:
        async with evald.AsyncClient(server_url) as aclient:
            with pytest.raises(evald.EvaldError) as caught:
                await aclient.metrics([1, 0, 1], [0.5, 0.5])
            assert caught.value.status == 422
            assert await aclient.healthy()
            return await aclient.activation("relu", [[-1.0, 2.0]])

    result = asyncio.run(run())
    np.testing.assert_array_equal(result.output, [[0.0, 2.0]])
