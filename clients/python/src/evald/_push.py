"""Pushing a table into a stream, free of I/O: the rows are cut into requests (``Call``s),
each applied atomically by the server and each carrying its own ``Idempotency-Key``, which
every retry of that request repeats.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ._calls import Call, segment
from ._encode import NonFiniteError, dumps, jsonable
from ._errors import EvaldError
from ._optional import optional, required
from ._results import PushResult

NDJSON = "application/x-ndjson"
ARROW = "application/vnd.apache.arrow.stream"
"""The Arrow IPC stream media type; used only when the server's OpenAPI offers it for
``POST /streams/{name}``."""

Format = Literal["auto", "ndjson", "arrow"]

_WIRE = {
    "prediction": "predictions",
    "label": "labels",
    "user_id": "user_ids",
    "weight": "sample_weights",
}
_ROLE = {wire: role for role, wire in _WIRE.items()}
_INDEX = re.compile(r"\[(\d+)\]")


def arrow_offered(spec: Any) -> bool:
    """Whether an OpenAPI document lists Arrow IPC as a request body of ``POST /streams/{name}``."""
    try:
        content = spec["paths"]["/streams/{name}"]["post"]["requestBody"]["content"]
    except (KeyError, TypeError):
        return False
    return isinstance(content, Mapping) and ARROW in content


class Columns:
    """The four columns of a push, from a pandas DataFrame, a pyarrow Table or a mapping of
    column name to array-like (lists, NumPy arrays, pandas Series)."""

    def __init__(
        self,
        data: Any,
        prediction: str,
        label: str,
        user_id: str | None,
        weight: str | None,
    ) -> None:
        self._data = data
        chosen = {"prediction": prediction, "label": label, "user_id": user_id, "weight": weight}
        self.names = {role: col for role, col in chosen.items() if col is not None}
        available = _column_names(data)
        missing = [col for col in self.names.values() if col not in available]
        if missing:
            raise KeyError(
                f"no column {', '.join(map(repr, missing))}; the data has {sorted(available)}"
            )
        self.rows = _row_count(data, prediction)
        for role, col in self.names.items():
            if _row_count(data, col) != self.rows:
                raise ValueError(
                    f"column {col!r} ({role}) has {_row_count(data, col)} rows, "
                    f"{prediction!r} has {self.rows}"
                )

    def lists(self, start: int, stop: int) -> dict[str, list[Any]]:
        """Rows ``start:stop`` as plain lists keyed by role."""
        return {role: _slice(self._data, col, start, stop) for role, col in self.names.items()}

    def arrow(self, start: int, stop: int) -> Any:
        """Rows ``start:stop`` as a pyarrow Table with columns named by role; user ids as text
        (``7`` and ``"7"`` are one user). A NaN or infinity is refused here, naming its column
        and row, as the NDJSON path refuses it (Arrow could carry it; the server refuses it)."""
        pa = required("pyarrow", "Arrow IPC push", "pyarrow")
        columns = self.lists(start, stop)
        for role in ("prediction", "weight"):
            for i, value in enumerate(columns.get(role, [])):
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(
                        f"column {self.names[role]!r}, row {start + i}: {_WIRE[role]}[{i}] is "
                        f"{value}: not a finite number"
                    )
        arrays = {
            role: pa.array([None if v is None else str(v) for v in values], pa.string())
            if role == "user_id"
            else pa.array(values, pa.float64() if role in ("prediction", "weight") else None)
            for role, values in columns.items()
        }
        return pa.table(arrays)


def _column_names(data: Any) -> set[str]:
    if hasattr(data, "column_names"):  # pyarrow Table
        return set(data.column_names)
    if hasattr(data, "columns"):  # pandas DataFrame
        return {str(c) for c in data.columns}
    if isinstance(data, Mapping):
        return {str(c) for c in data}
    raise TypeError(
        f"cannot push a {type(data).__name__}: pass a DataFrame, a pyarrow Table or a dict"
    )


def _row_count(data: Any, col: str) -> int:
    if hasattr(data, "num_rows"):
        return int(data.num_rows)
    return len(data[col])


def _slice(data: Any, col: str, start: int, stop: int) -> list[Any]:
    column = data.column(col) if hasattr(data, "column_names") else data[col]
    if hasattr(column, "iloc"):
        part = column.iloc[start:stop]
    elif hasattr(column, "to_pylist"):
        part = column.slice(start, stop - start)
    else:
        part = column[start:stop]
    plain = jsonable(part) if not isinstance(part, list) else part
    return list(plain)


@dataclass(frozen=True)
class Chunk:
    """One request of a push: rows ``start:stop`` of the data."""

    call: Call[dict[str, Any]]
    start: int
    stop: int
    line_starts: tuple[int, ...]
    """The data row each NDJSON line begins with (empty for Arrow)."""

    def locate(self, error: EvaldError) -> int | None:
        """The data row an error names, when the line (and an index in ``field``) tell it; in
        an Arrow body (no lines) the index in ``field`` is the row of the request."""
        if not self.line_starts:
            found = _INDEX.search(error.field or "")
            return self.start + int(found.group(1)) if found and error.line is None else None
        if error.line is None or not 1 <= error.line <= len(self.line_starts):
            return None
        first = self.line_starts[error.line - 1]
        found = _INDEX.search(error.field or "")
        return (
            first + int(found.group(1)) if found else (first if self._one_row(error.line) else None)
        )

    def _one_row(self, line: int) -> bool:
        end = self.line_starts[line] if line < len(self.line_starts) else self.stop
        return end - self.line_starts[line - 1] == 1


class PushPlan:
    """The requests of one push, in order, and what they add up to."""

    def __init__(
        self,
        stream: str,
        columns: Columns,
        *,
        records_per_request: int,
        records_per_line: int,
        max_line_bytes: int,
        arrow: bool,
        compress: bool,
        idempotency_key: str | None,
    ) -> None:
        if records_per_request < 1 or records_per_line < 1:
            raise ValueError("records_per_request and records_per_line must be at least 1")
        if columns.rows == 0:
            raise ValueError("nothing to push: the data has no rows")
        key = idempotency_key or uuid.uuid4().hex
        if not (1 <= len(key) <= 100 and key.isascii() and key.isprintable() and " " not in key):
            raise ValueError("idempotency_key must be 1-100 visible ASCII characters")
        self.stream = stream
        self.columns = columns
        self._per_request = records_per_request
        self._per_line = records_per_line
        self._max_line = max_line_bytes
        self._arrow = arrow
        self._compress = compress
        self.key = key
        self.accepted = 0
        self.requests = 0
        self._last: Mapping[str, Any] = {}

    def chunks(self) -> Iterator[Chunk]:
        """The requests, built one at a time (only one request's bytes are held)."""
        for index, start in enumerate(range(0, self.columns.rows, self._per_request)):
            stop = min(start + self._per_request, self.columns.rows)
            body, media, line_starts = self._body(start, stop)
            headers = {
                "content-type": media,
                # Idempotency-Key: the same on every attempt of this request, distinct per request.
                "idempotency-key": f"{self.key}-{index}",
            }
            if self._compress:
                body = gzip.compress(body, compresslevel=1)
                headers["content-encoding"] = "gzip"
            call = Call(
                "POST", f"/streams/{segment(self.stream)}", _as_dict, content=body, headers=headers
            )
            yield Chunk(call, start, stop, line_starts)

    def done(self, chunk: Chunk, answer: Mapping[str, Any]) -> None:
        self.accepted += int(answer.get("accepted", chunk.stop - chunk.start))
        self.requests += 1
        self._last = answer

    def failed(self, chunk: Chunk, error: EvaldError) -> EvaldError:
        """The error, told which data row failed and how much of the push was applied."""
        error.row = chunk.locate(error)
        error.records_applied = self.accepted
        return error

    def interrupted(self, chunk: Chunk, error: httpx.TransportError) -> None:
        """Notes on a connection error (when retries ran out) what is known to be applied and
        how to finish the push safely."""
        note = (
            f"push to {self.stream!r}: {self.accepted} records applied; rows "
            f"{chunk.start}..{chunk.stop - 1} may or may not have been; push the same data again "
            f"with idempotency_key={self.key!r} (and the same records_per_request) to apply the "
            f"rest exactly once, where the server keeps idempotency keys"
        )
        add_note = getattr(error, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(note)

    def result(self) -> PushResult:
        return PushResult(
            stream=str(self._last.get("stream", self.stream)),
            accepted=self.accepted,
            count=int(self._last.get("count", 0)),
            users=int(self._last.get("users", 0)),
            requests=self.requests,
        )

    def _body(self, start: int, stop: int) -> tuple[bytes, str, tuple[int, ...]]:
        if self._arrow:
            return _arrow_ipc(self.columns.arrow(start, stop)), ARROW, ()
        columns = self.columns.lists(start, stop)
        lines: list[bytes] = []
        starts: list[int] = []
        for first in range(0, stop - start, self._per_line):
            last = min(first + self._per_line, stop - start)
            self._lines(columns, first, last, start, lines, starts)
        return b"".join(lines), NDJSON, tuple(starts)

    def _lines(
        self,
        columns: Mapping[str, list[Any]],
        first: int,
        last: int,
        offset: int,
        lines: list[bytes],
        starts: list[int],
    ) -> None:
        """One batch-object line for rows ``first:last`` of the request, halved until it fits
        the server's line limit."""
        batch = {_WIRE[role]: values[first:last] for role, values in columns.items()}
        try:
            line = dumps(batch) + b"\n"
        except NonFiniteError as error:
            found = _INDEX.search(error.path)
            column = self.columns.names[_ROLE[error.path.split("[")[0]]]
            row = offset + first + int(found.group(1)) if found else offset + first
            raise ValueError(f"column {column!r}, row {row}: {error}") from None
        if len(line) > self._max_line and last - first > 1:
            middle = (first + last) // 2
            self._lines(columns, first, middle, offset, lines, starts)
            self._lines(columns, middle, last, offset, lines, starts)
            return
        lines.append(line)
        starts.append(offset + first)


def _as_dict(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return body if isinstance(body, dict) else {}


def _arrow_ipc(table: Any) -> bytes:
    pa = required("pyarrow", "Arrow IPC push", "pyarrow")
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def progress_bar(total: int, stream: str, enabled: bool) -> Any:
    """A tqdm bar counting acknowledged records, when tqdm is installed and ``enabled``."""
    tqdm = optional("tqdm.auto") if enabled else None
    if tqdm is None:
        return None
    # unit_scale (1.2M) only where it helps: small counts read better as "30/30".
    return tqdm.tqdm(total=total, unit="rec", unit_scale=total >= 10_000, desc=f"push {stream}")
