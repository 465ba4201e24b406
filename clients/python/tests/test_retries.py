"""Retries: 503 and broken connections, with the same Idempotency-Key on every attempt."""

from __future__ import annotations

import asyncio
import io

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from fake_server import Script, fake_server

import evald
from evald._push import ARROW

FAST = evald.Retry(attempts=4, backoff=0.001)
PUSHED = {"stream": "s", "accepted": 3, "count": 3, "users": 0}


def frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {"prediction": [0.1 * i for i in range(n)], "label": [i % 2 for i in range(n)]}
    )


def test_push_retries_503_twice_with_the_same_idempotency_key() -> None:
    script = Script(fail=2, ok=PUSHED)
    with fake_server(script) as url, evald.Client(url, retry=FAST) as client:
        result = client.stream("s").push(frame(), format="ndjson", progress=False)
    assert result.accepted == 3
    posts = [s for s in script.seen if s.method == "POST"]
    assert len(posts) == 3
    keys = {s.headers["idempotency-key"] for s in posts}
    assert len(keys) == 1
    assert {s.body for s in posts} == {posts[0].body}


def test_each_request_of_a_push_has_its_own_key_and_a_given_key_is_its_prefix() -> None:
    script = Script(ok=PUSHED)
    with fake_server(script) as url, evald.Client(url, retry=FAST) as client:
        client.stream("s").push(
            frame(5),
            records_per_request=2,
            format="ndjson",
            progress=False,
            idempotency_key="job-42",
        )
    keys = [s.headers["idempotency-key"] for s in script.seen if s.method == "POST"]
    assert keys == ["job-42-0", "job-42-1", "job-42-2"]


def test_503_is_raised_when_the_attempts_run_out() -> None:
    script = Script(fail=5, ok=PUSHED)
    with (
        fake_server(script) as url,
        evald.Client(url, retry=FAST) as client,
        pytest.raises(evald.EvaldError) as caught,
    ):
        client.metrics([1, 0], [0.9, 0.1])
    assert caught.value.status == 503
    assert caught.value.retry_after == 0.0
    assert len(script.seen) == 4


def test_over_budget_without_retry_after_is_a_hard_limit_and_not_retried() -> None:
    script = Script(fail=1, retry_after=None, problem_type="/problems/over-budget", ok=PUSHED)
    with (
        fake_server(script) as url,
        evald.Client(url, retry=FAST) as client,
        pytest.raises(evald.EvaldError, match="503"),
    ):
        client.stream("s").push(frame(), format="ndjson", progress=False)
    assert len(script.seen) == 1


def test_retry_after_sets_the_least_wait() -> None:
    response = httpx.Response(503, headers={"retry-after": "2"})
    assert evald.Retry(backoff=0.001).after_response(0, response) == 2.0
    assert evald.Retry(attempts=1).after_response(0, response) is None
    assert evald.Retry().after_response(0, httpx.Response(500)) is None


def test_a_broken_connection_is_retried_only_for_replay_safe_calls() -> None:
    retry = evald.Retry(backoff=0.001)
    broken = httpx.ReadError("connection reset")
    refused = httpx.ConnectError("refused")
    pure = evald.Call("POST", "/metrics", lambda r: None)
    delete = evald.Call("DELETE", "/streams/s", lambda r: None, replay_safe=False)
    assert retry.after_error(0, pure, broken) is not None
    assert retry.after_error(0, delete, broken) is None
    assert retry.after_error(0, delete, refused) is not None  # never sent: always safe
    assert retry.after_error(0, pure, httpx.ReadTimeout("slow")) is None  # still busy with it


def test_async_client_retries_with_the_same_key() -> None:
    script = Script(fail=2, ok=PUSHED)

    async def push(url: str) -> evald.PushResult:
        async with evald.AsyncClient(url, retry=FAST) as client:
            return await client.stream("s").push(frame(), format="ndjson", progress=False)

    with fake_server(script) as url:
        assert asyncio.run(push(url)).accepted == 3
    keys = [s.headers["idempotency-key"] for s in script.seen if s.method == "POST"]
    assert len(keys) == 3
    assert len(set(keys)) == 1


def test_arrow_ipc_is_sent_when_the_server_offers_it() -> None:
    offer: dict[str, object] = {
        "paths": {"/streams/{name}": {"post": {"requestBody": {"content": {ARROW: {}}}}}}
    }
    script = Script(ok=PUSHED, openapi=offer)
    df = frame().assign(uid=[7, "u", 7])
    with fake_server(script) as url, evald.Client(url, retry=FAST) as client:
        client.stream("s").push(df, user_id="uid", progress=False)
    (post,) = [s for s in script.seen if s.method == "POST"]
    assert post.headers["content-type"] == ARROW
    table = pa.ipc.open_stream(io.BytesIO(post.body)).read_all()
    assert table.column_names == ["prediction", "label", "user_id"]
    assert table.column("prediction").to_pylist() == df["prediction"].tolist()
    assert table.column("user_id").to_pylist() == ["7", "u", "7"]


def test_auto_format_sends_ndjson_when_arrow_is_not_offered() -> None:
    script = Script(ok=PUSHED, openapi={"paths": {}})
    with fake_server(script) as url, evald.Client(url, retry=FAST) as client:
        client.stream("s").push(frame(), progress=False)
    (post,) = [s for s in script.seen if s.method == "POST"]
    assert post.headers["content-type"] == "application/x-ndjson"


def test_a_push_cut_off_says_how_to_finish_it() -> None:
    from conftest import free_port

    client = evald.Client(f"http://127.0.0.1:{free_port()}", retry=evald.Retry(attempts=1))
    with client, pytest.raises(httpx.ConnectError) as caught:
        client.stream("s").push(frame(), format="ndjson", progress=False, idempotency_key="job-7")
    (note,) = caught.value.__notes__  # the tests run on Python 3.11+ (notes are 3.11+)
    assert "idempotency_key='job-7'" in note
    assert "0 records applied" in note
    assert "rows 0..2 may or may not have been" in note
