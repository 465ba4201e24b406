"""``Client`` and ``AsyncClient``: the same calls (``_calls``, ``_push``), two transports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, TypeVar

import httpx

from . import _calls as calls
from ._calls import Call, Retry
from ._errors import EvaldError
from ._optional import optional, required
from ._push import Columns, Format, PushPlan, arrow_offered, progress_bar
from ._results import (
    ArrayResult,
    CatalogueEntry,
    CompareResult,
    MetricsResult,
    PushResult,
    StreamSummary,
    StreamUser,
    Svg,
    UsersPage,
)
from ._version import __version__

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
"""Seconds to wait for connecting, for each read and for each write."""


def _http_options(url: str, api_key: str | None, timeout: float | httpx.Timeout) -> dict[str, Any]:
    headers = {"accept": "application/json", "user-agent": f"evald-python/{__version__}"}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    return {"base_url": url.rstrip("/"), "headers": headers, "timeout": timeout}


class _Base:
    def __init__(self, retry: Retry | None) -> None:
        self.retry = retry or Retry()
        self._arrow: bool | None = None


def _make_plan(
    name: str,
    data: Any,
    roles: tuple[str, str, str | None, str | None],
    arrow: bool,
    **options: Any,
) -> PushPlan:
    return PushPlan(name, Columns(data, *roles), arrow=arrow, **options)


def _use_arrow(format: Format, offered: bool | None) -> bool:
    """Arrow IPC when asked for (pyarrow then required), or, for ``auto``, when the server
    offers it and pyarrow is installed; else NDJSON."""
    if format == "ndjson":
        return False
    if format == "arrow":
        return required("pyarrow", "format='arrow'", "pyarrow") is not None
    if format != "auto":
        raise ValueError(f"format must be auto, ndjson or arrow, found {format!r}")
    return bool(offered) and optional("pyarrow") is not None


class Client(_Base):
    """A client of one evald server.

    >>> client = evald.Client("http://localhost:8080")
    >>> client.metrics([1, 0, 1], [0.9, 0.2, 0.6]).auc
    1.0

    ``api_key`` is sent as ``Authorization: Bearer``; ``retry`` sets how 503 answers and
    broken connections are retried (``Retry(attempts=1)`` turns retries off). Use it as a
    context manager, or call ``close()``.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(retry)
        self._http = httpx.Client(transport=transport, **_http_options(url, api_key, timeout))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """Sends ``call``, retrying as ``self.retry`` says; returns its parsed answer."""
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.content,
                    headers=call.headers,
                )
            except httpx.TransportError as error:
                delay = self.retry.after_error(attempt, call, error)
                if delay is None:
                    raise
            else:
                delay = self.retry.after_response(attempt, response)
                if delay is None:
                    return call.finish(response)
            time.sleep(delay)
            attempt += 1

    def metrics(
        self,
        y_true: Any,
        y_score: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        **options: Any,
    ) -> MetricsResult:
        """``POST /metrics``: binary (``y_score`` 1-d) or multiclass (N x C) metrics.

        ``options`` are the request's other fields: ``threshold``, ``beta``, ``average``,
        ``roc={"max_points": None}``, ``gauc_weighting``, ``thresholds``, ``max_fpr``, ...
        """
        return self.send(calls.metrics(y_true, y_score, user_ids, sample_weight, options))

    def compare(
        self,
        y_true: Any,
        y_score_a: Any,
        y_score_b: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        **options: Any,
    ) -> CompareResult:
        """``POST /metrics/compare``: two models on the same records, with the paired DeLong
        test of their AUC difference (and the user-paired one of GAUC with ``user_ids``)."""
        call = calls.compare(y_true, y_score_a, y_score_b, user_ids, sample_weight, options)
        return self.send(call)

    def loss(
        self, name: str, predictions: Any, targets: Any, reduction: str | None = None, **params: Any
    ) -> ArrayResult:
        """``POST /loss/{name}``: the loss and its gradient (``params``: the loss's own)."""
        return self.send(calls.loss(name, predictions, targets, reduction, params))

    def normalize(self, kind: str, input: Any, **params: Any) -> ArrayResult:
        """``POST /normalize/{kind}`` (batch, layer, instance, group)."""
        return self.send(calls.normalize(kind, input, params))

    def activation(self, name: str, input: Any, **params: Any) -> ArrayResult:
        """``POST /activation/{name}``: output and elementwise gradient."""
        return self.send(calls.activation(name, input, params))

    def optimizer_step(
        self, name: str, params: Any, grads: Any, state: Any = None, **hyper: Any
    ) -> ArrayResult:
        """``POST /optimizer/{name}/step``; pass the answer's ``state`` back for the next step."""
        return self.send(calls.optimizer_step(name, params, grads, state, hyper))

    def plot(
        self,
        kind: str,
        y_true: Any,
        y_score: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """``POST /plots/{kind}``: a chart (``roc``, ``pr``, ``calibration``, ``scores``,
        ``thresholds``) of the ``metrics`` of these arrays, as SVG text (``.save(path)``
        writes it). ``width``, ``height`` (pixels) and ``title`` are the chart's options;
        ``options`` are the metrics request's (``threshold``, ``roc``, ``confidence``, ...)."""
        body = calls.metrics_body(y_true, y_score, user_ids, sample_weight, options)
        return self.send(calls.plot(kind, body, (width, height, title)))

    def plot_compare(
        self,
        kind: str,
        y_true: Any,
        y_score_a: Any,
        y_score_b: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """``POST /plots/compare/{kind}``: both models of ``compare`` on one chart (``roc``,
        ``pr``, ``calibration``), as SVG text."""
        body = calls.compare_body(y_true, y_score_a, y_score_b, user_ids, sample_weight, options)
        return self.send(calls.plot(kind, body, (width, height, title), compare=True))

    def losses(self) -> list[CatalogueEntry]:
        """``GET /loss``: every loss with its summary and parameters."""
        return self.send(calls.catalogue("loss"))

    def loss_info(self, name: str) -> CatalogueEntry:
        """``GET /loss/{name}`` (an alias resolves to its entry; unknown: ``EvaldError`` 404)."""
        return self.send(calls.catalogue_entry("loss", name))

    def activations(self) -> list[CatalogueEntry]:
        """``GET /activation``: every activation with its summary and parameters."""
        return self.send(calls.catalogue("activation"))

    def activation_info(self, name: str) -> CatalogueEntry:
        """``GET /activation/{name}``."""
        return self.send(calls.catalogue_entry("activation", name))

    def normalizations(self) -> list[CatalogueEntry]:
        """``GET /normalize``: every normalization kind with its summary and parameters."""
        return self.send(calls.catalogue("normalize"))

    def normalization_info(self, kind: str) -> CatalogueEntry:
        """``GET /normalize/{kind}``."""
        return self.send(calls.catalogue_entry("normalize", kind))

    def optimizers(self) -> list[CatalogueEntry]:
        """``GET /optimizer``: every optimizer with its summary and hyperparameters."""
        return self.send(calls.catalogue("optimizer"))

    def optimizer_info(self, name: str) -> CatalogueEntry:
        """``GET /optimizer/{name}``."""
        return self.send(calls.catalogue_entry("optimizer", name))

    def streams(self) -> list[StreamSummary]:
        """``GET /streams``: every stream's name, count, users, created_at, updated_at."""
        return self.send(calls.streams())

    def stream(self, name: str) -> Stream:
        """A handle on the stream ``name`` (created by its first push)."""
        return Stream(self, name)

    def healthy(self) -> bool:
        """Whether ``GET /healthz`` answers 200."""
        try:
            return self.send(calls.healthz())
        except (EvaldError, httpx.TransportError):
            return False

    def request(
        self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Any route, for what has no method here yet; the decoded JSON answer."""
        return self.send(calls.raw(method, path, json, params))

    def arrow_offered(self) -> bool:
        """Whether this server takes Arrow IPC stream bodies (asked once, from its OpenAPI)."""
        if self._arrow is None:
            try:
                self._arrow = arrow_offered(self.send(calls.openapi()))
            except EvaldError:
                self._arrow = False
        return self._arrow


class Stream:
    """A stream on a ``Client``: push records, read metrics, delete it."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name

    def __repr__(self) -> str:
        return f"Stream({self.name!r})"

    def push(
        self,
        data: Any,
        prediction: str = "prediction",
        label: str = "label",
        user_id: str | None = None,
        weight: str | None = None,
        *,
        records_per_request: int = 100_000,
        records_per_line: int = 1_000,
        max_line_bytes: int = 1 << 20,
        format: Format = "auto",
        compress: bool = False,
        progress: bool = True,
        idempotency_key: str | None = None,
    ) -> PushResult:
        """Adds the rows of ``data`` (a pandas DataFrame, a pyarrow Table or a dict of
        columns) to the stream, naming its columns.

        The rows go in requests of ``records_per_request``, each applied atomically and in
        order; a failing request raises ``EvaldError`` with ``row`` (the failing data row, when
        known) and ``records_applied`` (rows of this push applied before it). Each request
        carries ``Idempotency-Key: <idempotency_key>-<request index>`` (a random key when not
        given), the same on every retry; give your own key to make a re-run of the same push
        safe. ``format``: ``auto`` sends Arrow IPC when the server offers it and pyarrow is
        installed, else NDJSON. A tqdm bar shows progress when tqdm is installed and
        ``progress`` is true.
        """
        offered = self.client.arrow_offered() if format == "auto" else None
        plan = _make_plan(
            self.name,
            data,
            (prediction, label, user_id, weight),
            _use_arrow(format, offered),
            records_per_request=records_per_request,
            records_per_line=records_per_line,
            max_line_bytes=max_line_bytes,
            compress=compress,
            idempotency_key=idempotency_key,
        )
        bar = progress_bar(plan.columns.rows, self.name, progress)
        try:
            for chunk in plan.chunks():
                try:
                    plan.done(chunk, self.client.send(chunk.call))
                except EvaldError as error:
                    raise plan.failed(chunk, error) from None
                except httpx.TransportError as error:
                    plan.interrupted(chunk, error)
                    raise
                if bar is not None:
                    bar.update(chunk.stop - chunk.start)
        finally:
            if bar is not None:
                bar.close()
        return plan.result()

    def metrics(self, **options: Any) -> MetricsResult:
        """``GET /streams/{name}/metrics``; ``options`` are its query parameters (``threshold``,
        ``beta``, ``max_points``, ``gauc_weighting``, ``thresholds=[...]``, ``tpr_at_fpr=[...]``,
        ``max_fpr``, ``n_bins``, ``strategy``, ``pr_max_points``, ``confidence``, ...)."""
        return self.client.send(calls.stream_metrics(self.name, options))

    def user(self, user_id: str | int, **options: Any) -> MetricsResult:
        """``GET /streams/{name}/users/{user_id}/metrics``."""
        return self.client.send(calls.user_metrics(self.name, user_id, options))

    def summary(self) -> StreamSummary:
        """``GET /streams/{name}``: count, users, timestamps, ``exact`` and ``auc_error_bound``."""
        return self.client.send(calls.stream_summary(self.name))

    def users(
        self, limit: int | None = None, cursor: str | None = None, order: str | None = None
    ) -> UsersPage:
        """``GET /streams/{name}/users``: one page of users (``order``: ``user_id``, the
        default, ``auc`` worst first, or ``impressions``); pass its ``next_cursor`` as
        ``cursor``, with the same ``order``, for the next one. ``iter_users`` follows them."""
        return self.client.send(calls.stream_users(self.name, limit, cursor, order))

    def iter_users(
        self, order: str | None = None, page_size: int | None = None
    ) -> Iterator[StreamUser]:
        """Every user of the stream in ``order``, one ``users`` page of ``page_size`` at a time
        (a user that does not change while paging is listed exactly once)."""
        cursor: str | None = None
        while True:
            page = self.users(limit=page_size, cursor=cursor, order=order)
            yield from page.users
            cursor = page.next_cursor
            if cursor is None:
                return

    def compare(self, other: str | Stream, **options: Any) -> CompareResult:
        """``GET /streams/{name}/compare/{other}``: this stream is ``a``, ``other`` is ``b``,
        with the unpaired DeLong test of AUC b - a; ``options`` are query parameters
        (``confidence``, ``gauc_weighting``, ``threshold``, ...)."""
        other_name = other.name if isinstance(other, Stream) else other
        return self.client.send(calls.stream_compare(self.name, other_name, options))

    def plot(
        self,
        kind: str,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """``GET /streams/{name}/plots/{kind}``: a chart of the stream, as SVG text;
        ``options`` are the query parameters of ``metrics``."""
        call = calls.stream_plot(self.name, None, kind, (width, height, title), options)
        return self.client.send(call)

    def user_plot(
        self,
        user_id: str | int,
        kind: str,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """``GET /streams/{name}/users/{user_id}/plots/{kind}``: a chart of one user."""
        call = calls.stream_plot(self.name, user_id, kind, (width, height, title), options)
        return self.client.send(call)

    def delete(self) -> None:
        """``DELETE /streams/{name}``: the stream is gone (``EvaldError`` 404 if it was not)."""
        self.client.send(calls.delete_stream(self.name))


class AsyncClient(_Base):
    """The asyncio twin of ``Client``: the same methods, awaited."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(retry)
        self._http = httpx.AsyncClient(transport=transport, **_http_options(url, api_key, timeout))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Sends ``call``, retrying as ``self.retry`` says; returns its parsed answer."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.content,
                    headers=call.headers,
                )
            except httpx.TransportError as error:
                delay = self.retry.after_error(attempt, call, error)
                if delay is None:
                    raise
            else:
                delay = self.retry.after_response(attempt, response)
                if delay is None:
                    return call.finish(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def metrics(
        self,
        y_true: Any,
        y_score: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        **options: Any,
    ) -> MetricsResult:
        """See ``Client.metrics``."""
        return await self.send(calls.metrics(y_true, y_score, user_ids, sample_weight, options))

    async def compare(
        self,
        y_true: Any,
        y_score_a: Any,
        y_score_b: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        **options: Any,
    ) -> CompareResult:
        """See ``Client.compare``."""
        call = calls.compare(y_true, y_score_a, y_score_b, user_ids, sample_weight, options)
        return await self.send(call)

    async def loss(
        self, name: str, predictions: Any, targets: Any, reduction: str | None = None, **params: Any
    ) -> ArrayResult:
        """See ``Client.loss``."""
        return await self.send(calls.loss(name, predictions, targets, reduction, params))

    async def normalize(self, kind: str, input: Any, **params: Any) -> ArrayResult:
        """See ``Client.normalize``."""
        return await self.send(calls.normalize(kind, input, params))

    async def activation(self, name: str, input: Any, **params: Any) -> ArrayResult:
        """See ``Client.activation``."""
        return await self.send(calls.activation(name, input, params))

    async def optimizer_step(
        self, name: str, params: Any, grads: Any, state: Any = None, **hyper: Any
    ) -> ArrayResult:
        """See ``Client.optimizer_step``."""
        return await self.send(calls.optimizer_step(name, params, grads, state, hyper))

    async def plot(
        self,
        kind: str,
        y_true: Any,
        y_score: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """See ``Client.plot``."""
        body = calls.metrics_body(y_true, y_score, user_ids, sample_weight, options)
        return await self.send(calls.plot(kind, body, (width, height, title)))

    async def plot_compare(
        self,
        kind: str,
        y_true: Any,
        y_score_a: Any,
        y_score_b: Any,
        user_ids: Any = None,
        sample_weight: Any = None,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """See ``Client.plot_compare``."""
        body = calls.compare_body(y_true, y_score_a, y_score_b, user_ids, sample_weight, options)
        return await self.send(calls.plot(kind, body, (width, height, title), compare=True))

    async def losses(self) -> list[CatalogueEntry]:
        """See ``Client.losses``."""
        return await self.send(calls.catalogue("loss"))

    async def loss_info(self, name: str) -> CatalogueEntry:
        """See ``Client.loss_info``."""
        return await self.send(calls.catalogue_entry("loss", name))

    async def activations(self) -> list[CatalogueEntry]:
        """See ``Client.activations``."""
        return await self.send(calls.catalogue("activation"))

    async def activation_info(self, name: str) -> CatalogueEntry:
        """See ``Client.activation_info``."""
        return await self.send(calls.catalogue_entry("activation", name))

    async def normalizations(self) -> list[CatalogueEntry]:
        """See ``Client.normalizations``."""
        return await self.send(calls.catalogue("normalize"))

    async def normalization_info(self, kind: str) -> CatalogueEntry:
        """See ``Client.normalization_info``."""
        return await self.send(calls.catalogue_entry("normalize", kind))

    async def optimizers(self) -> list[CatalogueEntry]:
        """See ``Client.optimizers``."""
        return await self.send(calls.catalogue("optimizer"))

    async def optimizer_info(self, name: str) -> CatalogueEntry:
        """See ``Client.optimizer_info``."""
        return await self.send(calls.catalogue_entry("optimizer", name))

    async def streams(self) -> list[StreamSummary]:
        """See ``Client.streams``."""
        return await self.send(calls.streams())

    def stream(self, name: str) -> AsyncStream:
        """See ``Client.stream``."""
        return AsyncStream(self, name)

    async def healthy(self) -> bool:
        """See ``Client.healthy``."""
        try:
            return await self.send(calls.healthz())
        except (EvaldError, httpx.TransportError):
            return False

    async def request(
        self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """See ``Client.request``."""
        return await self.send(calls.raw(method, path, json, params))

    async def arrow_offered(self) -> bool:
        """See ``Client.arrow_offered``."""
        if self._arrow is None:
            try:
                self._arrow = arrow_offered(await self.send(calls.openapi()))
            except EvaldError:
                self._arrow = False
        return self._arrow


class AsyncStream:
    """The asyncio twin of ``Stream``."""

    def __init__(self, client: AsyncClient, name: str) -> None:
        self.client = client
        self.name = name

    def __repr__(self) -> str:
        return f"AsyncStream({self.name!r})"

    async def push(
        self,
        data: Any,
        prediction: str = "prediction",
        label: str = "label",
        user_id: str | None = None,
        weight: str | None = None,
        *,
        records_per_request: int = 100_000,
        records_per_line: int = 1_000,
        max_line_bytes: int = 1 << 20,
        format: Format = "auto",
        compress: bool = False,
        progress: bool = True,
        idempotency_key: str | None = None,
    ) -> PushResult:
        """See ``Stream.push``."""
        offered = await self.client.arrow_offered() if format == "auto" else None
        plan = _make_plan(
            self.name,
            data,
            (prediction, label, user_id, weight),
            _use_arrow(format, offered),
            records_per_request=records_per_request,
            records_per_line=records_per_line,
            max_line_bytes=max_line_bytes,
            compress=compress,
            idempotency_key=idempotency_key,
        )
        bar = progress_bar(plan.columns.rows, self.name, progress)
        try:
            for chunk in plan.chunks():
                try:
                    plan.done(chunk, await self.client.send(chunk.call))
                except EvaldError as error:
                    raise plan.failed(chunk, error) from None
                except httpx.TransportError as error:
                    plan.interrupted(chunk, error)
                    raise
                if bar is not None:
                    bar.update(chunk.stop - chunk.start)
        finally:
            if bar is not None:
                bar.close()
        return plan.result()

    async def metrics(self, **options: Any) -> MetricsResult:
        """See ``Stream.metrics``."""
        return await self.client.send(calls.stream_metrics(self.name, options))

    async def user(self, user_id: str | int, **options: Any) -> MetricsResult:
        """See ``Stream.user``."""
        return await self.client.send(calls.user_metrics(self.name, user_id, options))

    async def summary(self) -> StreamSummary:
        """See ``Stream.summary``."""
        return await self.client.send(calls.stream_summary(self.name))

    async def users(
        self, limit: int | None = None, cursor: str | None = None, order: str | None = None
    ) -> UsersPage:
        """See ``Stream.users``."""
        return await self.client.send(calls.stream_users(self.name, limit, cursor, order))

    async def iter_users(
        self, order: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[StreamUser]:
        """See ``Stream.iter_users``: ``async for user in stream.iter_users()``."""
        cursor: str | None = None
        while True:
            page = await self.users(limit=page_size, cursor=cursor, order=order)
            for user in page.users:
                yield user
            cursor = page.next_cursor
            if cursor is None:
                return

    async def compare(self, other: str | AsyncStream, **options: Any) -> CompareResult:
        """See ``Stream.compare``."""
        other_name = other.name if isinstance(other, AsyncStream) else other
        return await self.client.send(calls.stream_compare(self.name, other_name, options))

    async def plot(
        self,
        kind: str,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """See ``Stream.plot``."""
        call = calls.stream_plot(self.name, None, kind, (width, height, title), options)
        return await self.client.send(call)

    async def user_plot(
        self,
        user_id: str | int,
        kind: str,
        *,
        width: int | None = None,
        height: int | None = None,
        title: str | None = None,
        **options: Any,
    ) -> Svg:
        """See ``Stream.user_plot``."""
        call = calls.stream_plot(self.name, user_id, kind, (width, height, title), options)
        return await self.client.send(call)

    async def delete(self) -> None:
        """See ``Stream.delete``."""
        await self.client.send(calls.delete_stream(self.name))
