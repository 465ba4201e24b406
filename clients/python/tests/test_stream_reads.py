"""A stream's summary, its users page by page and two streams compared, through the client
(sync and async), against what was pushed."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import evald


def clicks(n: int = 600, users: int = 37, seed: int = 1, lift: float = 0.25) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    click = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "score": np.round(np.clip(lift * click + rng.uniform(0, 0.75, n), 0, 1), 3),
            "click": click,
            "uid": [f"u{u:02d}" for u in rng.integers(0, users, n)],
        }
    )


def pushed(client: evald.Client, name: str, df: pd.DataFrame) -> evald.Stream:
    stream = client.stream(name)
    stream.push(df, prediction="score", label="click", user_id="uid", progress=False)
    return stream


def per_user(df: pd.DataFrame) -> dict[str, tuple[int, int, float | None]]:
    """user -> (count, positives, AUC or None with one class), by scikit-learn."""
    out: dict[str, tuple[int, int, float | None]] = {}
    for user, rows in df.groupby("uid"):
        auc = (
            skm.roc_auc_score(rows["click"], rows["score"])
            if rows["click"].nunique() == 2
            else None
        )
        out[str(user)] = (len(rows), int(rows["click"].sum()), auc)
    return out


def test_summary_is_the_streams_entry_plus_exactness(
    client: evald.Client, stream_name: str
) -> None:
    df = clicks()
    stream = pushed(client, stream_name, df)
    summary = stream.summary()
    assert isinstance(summary, evald.StreamSummary)
    assert summary.name == stream_name
    assert summary.count == len(df)
    assert summary.users == df["uid"].nunique()
    assert summary.exact is True
    assert summary.auc_error_bound == 0
    assert summary.created_at <= summary.updated_at
    listed = {s.name: s for s in client.streams()}[stream_name]
    assert isinstance(listed, evald.StreamSummary)
    assert (listed.count, listed.users, listed.created_at) == (
        summary.count,
        summary.users,
        summary.created_at,
    )
    assert listed.exact is None  # GET /streams does not say
    stream.delete()
    with pytest.raises(evald.EvaldError, match="404"):
        stream.summary()


def test_users_pages_follow_the_cursor_and_match_sklearn(
    client: evald.Client, stream_name: str
) -> None:
    df = clicks()
    stream = pushed(client, stream_name, df)
    expected = per_user(df)
    first = stream.users(limit=10)
    assert isinstance(first, evald.UsersPage)
    assert first.stream == stream_name
    assert first.order == "user_id"
    assert len(first) == 10
    assert [u.user_id for u in first] == sorted(expected)[:10]
    assert first.next_cursor is not None
    second = stream.users(limit=10, cursor=first.next_cursor)
    assert [u.user_id for u in second] == sorted(expected)[10:20]
    # Every user once, in order, over pages of 8 (37 users: the last page is short).
    everyone = list(stream.iter_users(page_size=8))
    assert [u.user_id for u in everyone] == sorted(expected)
    for user in everyone:
        count, positives, auc = expected[user.user_id]
        assert (user.count, user.positives) == (count, positives)
        assert user.auc == (None if auc is None else pytest.approx(auc, abs=1e-12))
    assert list(stream.iter_users()) == everyone  # the server's default page size
    last = stream.users(limit=len(expected))
    assert last.next_cursor is None
    frame = last.to_frame()
    assert list(frame.columns) == ["user_id", "count", "positives", "auc"]
    assert frame["count"].sum() == len(df)


@pytest.mark.parametrize("order", ["auc", "impressions"])
def test_users_in_another_order(client: evald.Client, stream_name: str, order: str) -> None:
    df = clicks(n=300, users=15, seed=4)
    stream = pushed(client, stream_name, df)
    users = list(stream.iter_users(order=order, page_size=4))
    expected = per_user(df)
    assert sorted(u.user_id for u in users) == sorted(expected)
    keys: list[tuple[float, float, str]]
    if order == "auc":  # ascending, users without an AUC last, ties by id
        keys = [(float(u.auc is None), u.auc or 0.0, u.user_id) for u in users]
    else:  # record count descending, ties by id
        keys = [(-u.count, 0.0, u.user_id) for u in users]
    assert keys == sorted(keys)
    assert stream.users(limit=4, order=order).order == order


def test_users_errors_name_the_parameter(client: evald.Client, stream_name: str) -> None:
    stream = pushed(client, stream_name, clicks(n=50))
    with pytest.raises(evald.EvaldError) as caught:
        stream.users(limit=0)
    assert (caught.value.status, caught.value.field) == (422, "limit")
    with pytest.raises(evald.EvaldError) as caught:
        stream.users(order="best")
    assert caught.value.field == "order"
    cursor = stream.users(limit=2, order="auc").next_cursor
    with pytest.raises(evald.EvaldError) as caught:
        stream.users(limit=2, cursor=cursor, order="impressions")
    assert caught.value.field == "cursor"
    with pytest.raises(evald.EvaldError, match="404"):
        client.stream(f"{stream_name}-none").users()


def test_compare_two_streams(client: evald.Client, stream_name: str) -> None:
    df_a, df_b = clicks(seed=5, lift=0.2), clicks(seed=6, lift=0.4)
    a = pushed(client, f"{stream_name}-a", df_a)
    b = pushed(client, f"{stream_name}-b", df_b)
    result = a.compare(b, confidence=0.9, gauc_weighting="uniform")
    assert isinstance(result, evald.CompareResult)
    assert result.a.stream == a.name
    assert result.b.stream == b.name
    assert result.a.auc == pytest.approx(skm.roc_auc_score(df_a["click"], df_a["score"]), abs=1e-12)
    assert result.b.auc == pytest.approx(skm.roc_auc_score(df_b["click"], df_b["score"]), abs=1e-12)
    diff = result.auc_diff
    assert diff is not None
    assert result.a.auc is not None
    assert result.b.auc is not None
    assert diff.value == pytest.approx(result.b.auc - result.a.auc, abs=1e-12)
    assert diff.method == "delong-unpaired"
    assert diff.df is not None
    assert diff.df > 0
    assert diff.p_value is not None
    assert 0 <= diff.p_value <= 1
    assert result.a.auc_ci is not None
    assert result.a.auc_ci.level == 0.9
    assert result.gauc_diff is not None
    assert result.gauc_diff.method == "user-unpaired"
    assert result.a.gauc is not None
    assert result.a.gauc["weighting"] == "uniform"
    assert a.compare(b.name).to_dict() == a.compare(b).to_dict()  # a name does as well
    itself = a.compare(a)
    assert itself.auc_diff is not None
    assert itself.auc_diff.value == 0
    with pytest.raises(evald.EvaldError, match="404"):
        a.compare(f"{stream_name}-none")


def test_async_summary_users_and_compare(
    client: evald.Client, server_url: str, stream_name: str
) -> None:
    df = clicks(n=200, users=11, seed=8)
    pushed(client, stream_name, df)
    pushed(client, f"{stream_name}-b", clicks(n=200, users=11, seed=9))

    async def run() -> tuple[
        evald.StreamSummary, evald.UsersPage, list[evald.StreamUser], evald.CompareResult
    ]:
        async with evald.AsyncClient(server_url) as aclient:
            stream = aclient.stream(stream_name)
            summary = await stream.summary()
            page = await stream.users(limit=3, order="impressions")
            everyone = [u async for u in stream.iter_users(page_size=4)]
            other = aclient.stream(f"{stream_name}-b")
            compared = await stream.compare(other, confidence=0.9)
            return summary, page, everyone, compared

    summary, page, everyone, compared = asyncio.run(run())
    sync = client.stream(stream_name)
    assert summary == sync.summary()
    assert page == sync.users(limit=3, order="impressions")
    assert everyone == list(sync.iter_users(page_size=4))
    assert len(everyone) == df["uid"].nunique()
    assert compared.to_dict() == sync.compare(f"{stream_name}-b", confidence=0.9).to_dict()
