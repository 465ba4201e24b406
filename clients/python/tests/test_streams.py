"""Streams through the client: push a pandas DataFrame, read metrics, delete."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import evald
from evald._push import ARROW, NDJSON, Format


def clicks(n: int = 1000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    click = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "score": np.round(np.clip(0.25 * click + rng.uniform(0, 0.75, n), 0, 1), 3),
            "click": click,
            "uid": [f"u{u}" for u in rng.integers(0, 30, n)],
            "w": rng.uniform(0.5, 2.0, n),
        }
    )


def test_push_in_several_requests_equals_one_shot_metrics(
    client: evald.Client, stream_name: str
) -> None:
    df = clicks()
    stream = client.stream(stream_name)
    pushed = stream.push(
        df,
        prediction="score",
        label="click",
        user_id="uid",
        records_per_request=300,
        records_per_line=64,
        progress=False,
    )
    assert pushed == evald.PushResult(stream_name, 1000, 1000, df["uid"].nunique(), 4)
    streamed = stream.metrics()
    one_shot = client.metrics(df["click"], df["score"], user_ids=df["uid"])
    for field in ("auc", "accuracy", "precision", "recall", "f1"):
        assert streamed[field] == pytest.approx(one_shot[field], abs=1e-12), field
    assert streamed.gauc is not None
    assert one_shot.gauc is not None
    assert streamed.gauc.value == pytest.approx(one_shot.gauc.value, abs=1e-12)
    assert streamed.stream == stream_name


def test_user_metrics_and_query_options(client: evald.Client, stream_name: str) -> None:
    df = clicks(seed=2)
    stream = client.stream(stream_name)
    stream.push(df, prediction="score", label="click", user_id="uid", weight="w", progress=False)
    mine = df[df["uid"] == "u3"]
    user = stream.user("u3", threshold=0.4, drop_intermediate=False)
    expected = client.metrics(mine["click"], mine["score"], sample_weight=mine["w"], threshold=0.4)
    assert user.count == len(mine)
    assert user.threshold == 0.4
    assert user.auc == pytest.approx(expected.auc, abs=1e-12)
    assert user.f1 == pytest.approx(expected.f1, abs=1e-12)


def test_push_from_a_pyarrow_table_and_a_dict_of_arrays(
    client: evald.Client, stream_name: str
) -> None:
    df = clicks(n=200, seed=3)
    stream = client.stream(stream_name)
    stream.push(pa.Table.from_pandas(df), prediction="score", label="click", progress=False)
    stream.push(
        {"prediction": df["score"].to_numpy(), "label": df["click"].to_numpy()}, progress=False
    )
    both = pd.concat([df, df])
    expected = client.metrics(both["click"], both["score"])
    assert stream.metrics().count == 400
    assert stream.metrics().auc == pytest.approx(expected.auc, abs=1e-12)


def test_gzip_push_and_a_user_id_that_needs_escaping(
    client: evald.Client, stream_name: str
) -> None:
    df = clicks(n=50)
    df["uid"] = ["a b/c?&" if i % 2 else "plain" for i in range(50)]
    name = f"{stream_name}:v1.2"
    stream = client.stream(name)
    stream.push(df, prediction="score", label="click", user_id="uid", compress=True, progress=False)
    assert stream.metrics().count == 50
    assert stream.user("a b/c?&").count == 25
    assert name in [s.name for s in client.streams()]
    stream.delete()
    assert name not in [s.name for s in client.streams()]


def test_delete_makes_the_stream_unknown(client: evald.Client, stream_name: str) -> None:
    stream = client.stream(stream_name)
    stream.push(clicks(n=20), prediction="score", label="click", progress=False)
    stream.delete()
    with pytest.raises(evald.EvaldError) as caught:
        stream.metrics()
    assert caught.value.status == 404
    assert caught.value.slug == "not-found"
    with pytest.raises(evald.EvaldError, match="404"):
        stream.delete()


def test_a_bad_row_names_its_row_and_what_was_applied(
    client: evald.Client, stream_name: str
) -> None:
    df = clicks(n=100)
    df.loc[57, "click"] = 7
    stream = client.stream(stream_name)
    with pytest.raises(evald.EvaldError) as caught:
        stream.push(
            df,
            prediction="score",
            label="click",
            records_per_request=40,
            records_per_line=8,
            format="ndjson",
            progress=False,
        )
    error = caught.value
    assert error.status == 422
    assert error.field == "labels[1]"  # row 57 is the second of the line starting at row 56
    assert error.line == 3  # rows 40..47, 48..55, 56..63: the third line of request 2
    assert error.row == 57
    assert error.records_applied == 40
    assert "data row 57" in str(error)
    assert stream.metrics().count == 40  # request 1 applied, request 2 wholly refused


def test_a_bad_row_of_an_arrow_push_names_its_row(client: evald.Client, stream_name: str) -> None:
    df = clicks(n=100)
    df.loc[57, "click"] = 7
    stream = client.stream(stream_name)
    with pytest.raises(evald.EvaldError) as caught:
        stream.push(
            df,
            prediction="score",
            label="click",
            records_per_request=40,
            format="arrow",
            progress=False,
        )
    error = caught.value
    assert error.status == 422
    assert error.field == "labels[17]"  # an Arrow body has no lines: row 17 of request 2
    assert error.line is None
    assert error.row == 57
    assert error.records_applied == 40
    assert "data row 57" in str(error)
    assert stream.metrics().count == 40  # request 1 applied, request 2 wholly refused


@pytest.mark.parametrize("format", ["ndjson", "arrow"])
def test_missing_columns_and_non_finite_values_are_refused_locally(
    client: evald.Client, stream_name: str, format: Format
) -> None:
    df = clicks(n=10)
    stream = client.stream(stream_name)
    with pytest.raises(KeyError, match="'label'"):
        stream.push(df, prediction="score", progress=False, format=format)
    df.loc[6, "score"] = np.inf
    with pytest.raises(ValueError, match="column 'score', row 6"):
        stream.push(
            df,
            prediction="score",
            label="click",
            records_per_line=4,
            progress=False,
            format=format,
        )
    df.loc[6, "score"] = 0.5
    df.loc[8, "w"] = np.nan
    with pytest.raises(ValueError, match="column 'w', row 8"):
        stream.push(
            df, prediction="score", label="click", weight="w", progress=False, format=format
        )
    with pytest.raises(evald.EvaldError, match="404"):
        stream.metrics()  # nothing was sent


def test_push_shows_a_tqdm_bar(
    client: evald.Client, stream_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client.stream(stream_name).push(clicks(n=30), prediction="score", label="click")
    err = capsys.readouterr().err
    assert f"push {stream_name}" in err
    assert "30/30" in err


class Recording(httpx.HTTPTransport):
    """A transport noting the content type of every POST it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.sent.append(request.headers["content-type"])
        return super().handle_request(request)


def test_arrow_is_chosen_when_the_server_offers_it(
    client: evald.Client, server_url: str, stream_name: str
) -> None:
    # The server lists Arrow IPC for POST /streams/{name} in its OpenAPI document.
    assert client.arrow_offered() is True
    df = clicks(n=40)
    transport = Recording()
    with evald.Client(server_url, transport=transport) as recorded:
        for format in ("auto", "ndjson", "arrow"):
            recorded.stream(stream_name).push(
                df, prediction="score", label="click", user_id="uid", format=format, progress=False
            )
    assert transport.sent == [ARROW, NDJSON, ARROW]
    thrice = pd.concat([df] * 3)
    one_shot = client.metrics(thrice["click"], thrice["score"], user_ids=thrice["uid"])
    streamed = client.stream(stream_name).metrics()
    assert streamed.count == 120
    assert streamed.auc == pytest.approx(one_shot.auc, abs=1e-12)
    assert streamed.gauc is not None
    assert one_shot.gauc is not None
    assert streamed.gauc.value == pytest.approx(one_shot.gauc.value, abs=1e-12)
