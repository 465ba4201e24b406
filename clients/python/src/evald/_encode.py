"""Turning lists, NumPy arrays, pandas Series and pyarrow arrays into JSON bytes.

JSON has no NaN or infinity, so a non-finite number is refused here, by position, before
anything is sent (the server would only see a line that is not JSON).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any


def jsonable(value: Any) -> Any:
    """Plain Python lists, numbers and strings for array-likes and NumPy scalars.

    Called by ``json.dumps`` for every object it cannot encode, so large plain lists cost
    nothing extra: only the foreign objects come through here.
    """
    if hasattr(value, "to_pylist"):  # pyarrow Array / ChunkedArray
        return value.to_pylist()
    if hasattr(value, "tolist"):  # NumPy arrays and scalars, pandas Series and Index
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        raise TypeError("a set has no order; pass a list")
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


class NonFiniteError(ValueError):
    """A NaN or infinity where JSON needs a number; ``path`` says where (``predictions[3]``)."""

    def __init__(self, path: str, value: float) -> None:
        self.path = path
        super().__init__(f"{path} is {value}: JSON cannot carry NaN or infinity")


def dumps(body: Any) -> bytes:
    """Compact JSON bytes of ``body``; a ValueError names the first non-finite number."""
    try:
        return json.dumps(body, default=jsonable, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:
        found = _first_non_finite(json.loads(json.dumps(body, default=jsonable)), "")
        raise NonFiniteError(*(found or ("a value", math.nan))) from None


def _first_non_finite(value: Any, path: str) -> tuple[str, float] | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, dict):
        items: Iterable[tuple[str, Any]] = (
            (f"{path}.{k}" if path else str(k), v) for k, v in value.items()
        )
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub_path, sub in items:
        found = _first_non_finite(sub, sub_path)
        if found:
            return found
    return None


def query_value(value: Any) -> str:
    """One query-string value: booleans lower-case, sequences comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    plain = jsonable(value)
    if isinstance(plain, list):
        return ",".join(query_value(v) for v in plain)
    if isinstance(plain, (bool, int, float, str)):
        return query_value(plain)
    raise TypeError(f"cannot send a {type(value).__name__} as a query parameter")


def query(options: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters of ``options``, leaving out the ones that are ``None``."""
    return {k: query_value(v) for k, v in options.items() if v is not None}
