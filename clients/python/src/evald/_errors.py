"""The one exception type a server answer turns into."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

_KNOWN = ("type", "title", "status", "detail", "field", "limit", "line")


class EvaldError(Exception):
    """An error answer from evald, carrying its ``application/problem+json`` fields.

    ``type`` is the stable code to branch on (e.g. ``"/problems/invalid-input"``); ``field``
    names the offending request field, ``limit`` the configured limit that was hit and ``line``
    the 1-based NDJSON line of the request; every other member of the problem object is in
    ``extra``. ``row`` is set by ``Stream.push``: the 0-based row of the pushed data that the
    failing line holds, when it can be told.
    """

    def __init__(
        self,
        status: int,
        type: str = "about:blank",
        title: str = "",
        detail: str | None = None,
        field: str | None = None,
        limit: str | None = None,
        line: int | None = None,
        extra: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.field = field
        self.limit = limit
        self.line = line
        self.extra: dict[str, Any] = dict(extra or {})
        self.request_id = request_id
        self.retry_after = retry_after
        self.row: int | None = None
        self.records_applied: int | None = None
        super().__init__(self._message())

    @property
    def slug(self) -> str:
        """The last part of ``type``: ``"invalid-input"`` for ``"/problems/invalid-input"``."""
        return self.type.rsplit("/", 1)[-1]

    def _message(self) -> str:
        where = [f"{k}={v}" for k, v in (("field", self.field), ("line", self.line)) if v]
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self.status} {self.title or self.slug}: {self.detail or ''}{suffix}".rstrip(": ")

    def __str__(self) -> str:
        message = self._message()
        if self.row is not None:
            message += f" [data row {self.row}]"
        if self.records_applied is not None:
            message += f" [{self.records_applied} records of this push were applied before it]"
        return message

    def to_dict(self) -> dict[str, Any]:
        """The problem object as the server sent it."""
        known = {k: getattr(self, k) for k in _KNOWN}
        return {**{k: v for k, v in known.items() if v is not None}, **self.extra}

    @classmethod
    def from_response(cls, response: httpx.Response) -> EvaldError:
        """Reads a problem+json body; any other error body becomes ``detail`` verbatim."""
        body = _problem_body(response)
        return cls(
            status=_int_or(body.get("status"), response.status_code),
            type=str(body.get("type", "about:blank")),
            title=str(body.get("title", response.reason_phrase)),
            detail=_str_or_none(body.get("detail")),
            field=_str_or_none(body.get("field")),
            limit=_str_or_none(body.get("limit")),
            line=body["line"] if isinstance(body.get("line"), int) else None,
            extra={k: v for k, v in body.items() if k not in _KNOWN},
            request_id=response.headers.get("x-request-id"),
            retry_after=retry_after_seconds(response),
        )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form only; an HTTP date is ignored)."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _problem_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = response.text.strip()
    return {"detail": text[:2000]} if text else {}


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) else default


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
