"""Server errors become EvaldError with the problem+json fields."""

from __future__ import annotations

import httpx
import pytest

import evald


def test_length_mismatch_is_an_invalid_input_naming_the_field(client: evald.Client) -> None:
    with pytest.raises(evald.EvaldError) as caught:
        client.metrics([1, 0, 1, 0], [0.1, 0.2, 0.3, 0.4, 0.5])
    error = caught.value
    assert error.status == 422
    assert error.type == "/problems/invalid-input"
    assert error.slug == "invalid-input"
    assert error.title == "Invalid input"
    assert error.field is not None
    assert error.detail is not None
    assert "4" in error.detail
    assert "5" in error.detail
    assert error.request_id  # the server's x-request-id, to find its log line
    assert error.to_dict()["status"] == 422
    assert str(error).startswith("422 Invalid input: ")


def test_unknown_option_is_refused_by_name(client: evald.Client) -> None:
    with pytest.raises(evald.EvaldError) as caught:
        client.metrics([1, 0], [0.9, 0.1], treshold=0.3)
    assert caught.value.status == 422
    assert "treshold" in str(caught.value)


def test_unknown_loss_is_a_404_listing_the_valid_names(client: evald.Client) -> None:
    with pytest.raises(evald.EvaldError) as caught:
        client.loss("nope", [0.5], [1.0])
    assert caught.value.status == 404
    assert caught.value.slug == "not-found"
    assert "mse" in str(caught.value.extra.get("valid", caught.value.detail))


def test_an_option_given_twice_is_a_type_error(client: evald.Client) -> None:
    with pytest.raises(TypeError, match="labels given twice"):
        client.metrics([1, 0], [0.9, 0.1], labels=[0, 1])


def test_a_non_problem_error_body_becomes_the_detail() -> None:
    response = httpx.Response(502, text="<html>bad gateway</html>")
    error = evald.EvaldError.from_response(response)
    assert error.status == 502
    assert error.type == "about:blank"
    assert error.detail == "<html>bad gateway</html>"


def test_connection_refused_is_raised_after_the_retries() -> None:
    from conftest import free_port

    retry = evald.Retry(attempts=2, backoff=0.01)
    with evald.Client(f"http://127.0.0.1:{free_port()}", retry=retry) as client:
        with pytest.raises(httpx.ConnectError):
            client.metrics([1, 0], [0.9, 0.1])
        assert client.healthy() is False
