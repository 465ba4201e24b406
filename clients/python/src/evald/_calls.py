"""Request building and answer parsing, free of I/O: ``Client`` and ``AsyncClient`` both send
these ``Call`` objects, so the two differ only in how bytes travel.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from ._encode import dumps, query
from ._errors import EvaldError, retry_after_seconds
from ._results import (
    ArrayResult,
    CatalogueEntry,
    CompareResult,
    MetricsResult,
    StreamSummary,
    Svg,
    UsersPage,
)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

JSON = "application/json"
SVG = "image/svg+xml"


@dataclass(frozen=True)
class Call(Generic[T_co]):
    """One HTTP request and how to read its answer.

    ``replay_safe``: the request may be sent again after a connection broke while it was in
    flight (it changes nothing, or it carries an ``Idempotency-Key``). A request that never left
    (connection refused) is always retried.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T_co]
    params: Mapping[str, str] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    replay_safe: bool = True

    def finish(self, response: httpx.Response) -> T_co:
        """The parsed answer, or the server's problem raised as ``EvaldError``."""
        if response.is_success:
            return self.parse(response)
        raise EvaldError.from_response(response)


@dataclass(frozen=True)
class Retry:
    """When and how long to wait before sending a request again.

    A 503 is retried (the server's overload answer, with ``Retry-After``), except an
    ``over-budget`` one without ``Retry-After``: that is a hard limit (``--max-streams``, the
    memory budget) and waiting does not lift it. A request that never left (connection
    refused) is retried; one whose connection broke in flight only when ``Call.replay_safe``,
    and never after a read timeout (the server is still working on it). The wait doubles from
    ``backoff`` up to ``max_backoff``, with jitter, and is at least the server's ``Retry-After``.
    """

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, found {self.attempts}")

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to keep this answer."""
        if response.status_code != 503 or attempt + 1 >= self.attempts:
            return None
        retry_after = retry_after_seconds(response)
        if retry_after is None and _problem_type(response).endswith("/over-budget"):
            return None
        return max(self._backoff(attempt), retry_after or 0.0)

    def after_error(
        self, attempt: int, call: Call[Any], error: httpx.TransportError
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to raise ``error``."""
        if attempt + 1 >= self.attempts:
            return None
        never_sent = isinstance(
            error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
        )
        if never_sent:
            return self._backoff(attempt)
        # A read timeout means the server is still busy with it: sending it again adds load.
        busy = isinstance(error, httpx.ReadTimeout)
        return self._backoff(attempt) if call.replay_safe and not busy else None

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self.max_backoff, self.backoff * 2**attempt)
        return delay * random.uniform(0.5, 1.0)


def _problem_type(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("type", "")) if isinstance(body, dict) else ""


def segment(value: str | int) -> str:
    """One path segment, percent-encoded (a stream or user name may hold ``/`` or spaces)."""
    return quote(str(value), safe="")


def json_body(fields: Mapping[str, Any], options: Mapping[str, Any]) -> bytes:
    """The JSON body of ``fields`` plus the caller's ``options``; top-level ``None`` is left
    out so the server's default applies (``None`` inside an option, e.g.
    ``roc={"max_points": None}``, is sent as ``null``)."""
    clash = sorted(set(fields) & set(options))
    if clash:
        raise TypeError(f"{', '.join(clash)} given twice")
    merged = {k: v for k, v in {**fields, **options}.items() if v is not None}
    return dumps(merged)


def post_json(path: str, body: bytes, parse: Callable[[httpx.Response], T]) -> Call[T]:
    """A stateless POST: it changes nothing, so it may always be sent again."""
    return Call("POST", path, parse, content=body, headers={"content-type": JSON})


def as_metrics(response: httpx.Response) -> MetricsResult:
    return MetricsResult(response.json())


def as_array_result(response: httpx.Response) -> ArrayResult:
    return ArrayResult(response.json())


def as_json(response: httpx.Response) -> Any:
    return response.json() if response.content else None


def metrics_body(
    y_true: Any, y_score: Any, user_ids: Any, sample_weight: Any, options: Mapping[str, Any]
) -> bytes:
    """The ``POST /metrics`` body (also that of ``POST /plots/{kind}``)."""
    fields = {
        "labels": y_true,
        "predictions": y_score,
        "user_ids": user_ids,
        "sample_weights": sample_weight,
    }
    return json_body(fields, options)


def metrics(
    y_true: Any, y_score: Any, user_ids: Any, sample_weight: Any, options: Mapping[str, Any]
) -> Call[MetricsResult]:
    body = metrics_body(y_true, y_score, user_ids, sample_weight, options)
    return post_json("/metrics", body, as_metrics)


def compare_body(
    y_true: Any,
    y_score_a: Any,
    y_score_b: Any,
    user_ids: Any,
    sample_weight: Any,
    options: Mapping[str, Any],
) -> bytes:
    """The ``POST /metrics/compare`` body (also that of ``POST /plots/compare/{kind}``)."""
    fields = {
        "labels": y_true,
        "predictions_a": y_score_a,
        "predictions_b": y_score_b,
        "user_ids": user_ids,
        "sample_weights": sample_weight,
    }
    return json_body(fields, options)


def compare(
    y_true: Any,
    y_score_a: Any,
    y_score_b: Any,
    user_ids: Any,
    sample_weight: Any,
    options: Mapping[str, Any],
) -> Call[CompareResult]:
    body = compare_body(y_true, y_score_a, y_score_b, user_ids, sample_weight, options)
    return post_json("/metrics/compare", body, lambda r: CompareResult(r.json()))


def loss(
    name: str, predictions: Any, targets: Any, reduction: str | None, params: Mapping[str, Any]
) -> Call[ArrayResult]:
    fields = {"predictions": predictions, "targets": targets, "reduction": reduction}
    return post_json(f"/loss/{segment(name)}", json_body(fields, params), as_array_result)


def normalize(kind: str, input: Any, params: Mapping[str, Any]) -> Call[ArrayResult]:
    body = json_body({"input": input}, params)
    return post_json(f"/normalize/{segment(kind)}", body, as_array_result)


def activation(name: str, input: Any, params: Mapping[str, Any]) -> Call[ArrayResult]:
    body = json_body({"input": input}, params)
    return post_json(f"/activation/{segment(name)}", body, as_array_result)


def optimizer_step(
    name: str, params: Any, grads: Any, state: Any, hyper: Mapping[str, Any]
) -> Call[ArrayResult]:
    body = json_body({"params": params, "grads": grads, "state": state}, hyper)
    return post_json(f"/optimizer/{segment(name)}/step", body, as_array_result)


def streams() -> Call[list[StreamSummary]]:
    return Call("GET", "/streams", lambda r: [StreamSummary(s) for s in r.json()])


def stream_summary(name: str) -> Call[StreamSummary]:
    return Call("GET", f"/streams/{segment(name)}", lambda r: StreamSummary(r.json()))


def stream_users(
    name: str, limit: int | None, cursor: str | None, order: str | None
) -> Call[UsersPage]:
    params = query({"limit": limit, "cursor": cursor, "order": order})
    return Call("GET", f"/streams/{segment(name)}/users", lambda r: UsersPage(r.json()), params)


def stream_compare(name: str, other: str, options: Mapping[str, Any]) -> Call[CompareResult]:
    path = f"/streams/{segment(name)}/compare/{segment(other)}"
    return Call("GET", path, lambda r: CompareResult(r.json()), params=query(options))


def catalogue(route: str) -> Call[list[CatalogueEntry]]:
    """``GET /{route}`` of ``loss``, ``activation``, ``normalize`` or ``optimizer``: the list of
    entries; ``catalogue_entry`` is ``GET /{route}/{name}``, one entry."""
    return Call("GET", f"/{route}", lambda r: [CatalogueEntry(e) for e in r.json()])


def catalogue_entry(route: str, name: str) -> Call[CatalogueEntry]:
    return Call("GET", f"/{route}/{segment(name)}", lambda r: CatalogueEntry(r.json()))


def as_svg(response: httpx.Response) -> Svg:
    return Svg(response.text)


def _chart(width: int | None, height: int | None, title: str | None) -> dict[str, str]:
    return query({"width": width, "height": height, "title": title})


def plot(
    kind: str,
    body: bytes,
    chart: tuple[int | None, int | None, str | None],
    compare: bool = False,
) -> Call[Svg]:
    """``POST /plots/{kind}`` (or ``/plots/compare/{kind}``) of a metrics (compare) body; the
    chart options travel as query parameters. Stateless, so always replay-safe."""
    path = f"/plots/compare/{segment(kind)}" if compare else f"/plots/{segment(kind)}"
    headers = {"content-type": JSON, "accept": SVG}
    return Call("POST", path, as_svg, params=_chart(*chart), content=body, headers=headers)


def stream_plot(
    name: str,
    user_id: str | int | None,
    kind: str,
    chart: tuple[int | None, int | None, str | None],
    options: Mapping[str, Any],
) -> Call[Svg]:
    """``GET /streams/{name}/plots/{kind}``, or a user's with ``user_id``."""
    user = "" if user_id is None else f"/users/{segment(user_id)}"
    path = f"/streams/{segment(name)}{user}/plots/{segment(kind)}"
    params = {**query(options), **_chart(*chart)}
    return Call("GET", path, as_svg, params=params, headers={"accept": SVG})


def stream_metrics(name: str, options: Mapping[str, Any]) -> Call[MetricsResult]:
    return Call("GET", f"/streams/{segment(name)}/metrics", as_metrics, params=query(options))


def user_metrics(name: str, user_id: str | int, options: Mapping[str, Any]) -> Call[MetricsResult]:
    path = f"/streams/{segment(name)}/users/{segment(user_id)}/metrics"
    return Call("GET", path, as_metrics, params=query(options))


def delete_stream(name: str) -> Call[None]:
    """Not replay-safe: a repeat after a lost answer would find the stream gone (404)."""
    return Call("DELETE", f"/streams/{segment(name)}", lambda r: None, replay_safe=False)


def openapi() -> Call[Any]:
    return Call("GET", "/openapi.json", as_json)


def healthz() -> Call[bool]:
    return Call("GET", "/healthz", lambda r: True)


def raw(method: str, path: str, body: Any, params: Mapping[str, Any] | None) -> Call[Any]:
    """Any route, for what this client has no method for yet. Only GET is retried after a
    broken connection."""
    content = None if body is None else dumps(body)
    headers = {"content-type": JSON} if content is not None else {}
    return Call(
        method.upper(),
        path,
        as_json,
        params=query(params or {}),
        content=content,
        headers=headers,
        replay_safe=method.upper() == "GET",
    )
