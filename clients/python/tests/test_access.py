"""API keys: the client sends its key as a bearer token; 401 and 403 are EvaldErrors; tenants
do not see each other's streams."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import KEYS

import evald

DATA = pd.DataFrame({"prediction": [0.9, 0.2, 0.7], "label": [1, 0, 0]})


def test_without_a_key_the_answer_is_401(keyed_server_url: str) -> None:
    with evald.Client(keyed_server_url) as client, pytest.raises(evald.EvaldError) as caught:
        client.metrics([1, 0], [0.9, 0.1])
    assert caught.value.status == 401
    assert caught.value.slug == "unauthorized"


def test_a_read_only_key_cannot_push(keyed_server_url: str, stream_name: str) -> None:
    with evald.Client(keyed_server_url, api_key=KEYS["acme-ro"][0]) as client:
        with pytest.raises(evald.EvaldError) as caught:
            client.stream(stream_name).push(DATA, progress=False)
        assert client.arrow_offered() is True  # /openapi.json was read with the key
    assert caught.value.status == 403
    assert caught.value.extra["scope"] == "write"
    assert caught.value.records_applied == 0


def test_tenants_see_only_their_own_streams(keyed_server_url: str, stream_name: str) -> None:
    with (
        evald.Client(keyed_server_url, api_key=KEYS["acme-rw"][0]) as acme,
        evald.Client(keyed_server_url, api_key=KEYS["other-rw"][0]) as other,
    ):
        acme.stream(stream_name).push(DATA, progress=False)
        assert acme.stream(stream_name).metrics().count == 3
        assert stream_name in [s.name for s in acme.streams()]
        assert stream_name not in [s.name for s in other.streams()]
        with pytest.raises(evald.EvaldError, match="404"):
            other.stream(stream_name).metrics()
