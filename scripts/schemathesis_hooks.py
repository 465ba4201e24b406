"""Schemathesis hooks for scripts/schemathesis.

openapi/openapi.yaml describes an `application/x-ndjson` stream body as an array whose items are
its lines (OpenAPI 3.1 has no schema for a sequence of JSON texts). This serializer sends each
item as one line of JSON text. A value that is not an array (a negative test of the body's type)
is sent as a single line, and bytes or text as they are.

`filter_failure` drops a `negative_data_rejection` failure only when the request that was sent is
valid after all: see `_sent_query_is_valid`.
"""

import json
import re
from urllib.parse import parse_qsl, urlsplit

import jsonschema_rs
import schemathesis
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation


@schemathesis.serializer("application/x-ndjson")
def ndjson_lines(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    lines = value if isinstance(value, list) else [value]
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_UNREADABLE = object()


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keep every failure but an accepted negative request that was valid as sent."""
    if not isinstance(failure, AcceptedNegativeData):
        return True
    return not _sent_query_is_valid(case, response.request.url)


def _sent_query_is_valid(case, url):
    """Whether the request that was sent is valid, though schemathesis generated it as negative.

    A query parameter reaches the server as text, and some values schemathesis calls invalid are
    sent as valid text: an empty object or list sends nothing (an optional parameter left out), and
    a number for an array parameter in `form` style without `explode` reads as the one-item array
    (`thresholds=0.0`; `thresholds=` is the empty array). A 200 to such a request is right. True only when no other part of the
    request was negative, no parameter is sent twice or unknown, and every query parameter sent,
    read the way openapi/openapi.yaml describes it, satisfies its schema, with every required one
    present; anything this cannot read keeps the failure.
    """
    meta = case.meta
    if meta is None:
        return False
    negative = {location for location, info in meta.components.items() if info.mode.is_negative}
    if negative != {ParameterLocation.QUERY}:
        return False
    parameters = {parameter.name: parameter.definition for parameter in case.operation.query}
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)) or not set(names) <= parameters.keys():
        return False
    sent = {name: _read_query_value(parameters[name], text) for name, text in pairs}
    if any(value is _UNREADABLE for value in sent.values()):
        return False
    return jsonschema_rs.validator_for(case.operation.query.validation_schema).is_valid(sent)


def _read_query_value(definition, text):
    schema = definition.get("schema", {})
    if schema.get("type") != "array":
        return _read_scalar(schema, text)
    if definition.get("explode", definition.get("style", "form") == "form"):
        return _UNREADABLE
    if text == "":
        return []
    items = [_read_scalar(schema.get("items", {}), part) for part in text.split(",")]
    return _UNREADABLE if _UNREADABLE in items else items


def _read_scalar(schema, text):
    branches = schema.get("oneOf", schema.get("anyOf"))
    if branches is not None:
        return _read_by_branch(branches, text)
    kind = schema.get("type")
    if kind == "string":
        return text
    if kind == "number" and _JSON_NUMBER.fullmatch(text):
        return float(text)
    if kind == "integer" and _JSON_INTEGER.fullmatch(text):
        return int(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return _UNREADABLE


def _read_by_branch(branches, text):
    """The text as the first branch that reads it and accepts the value (`max_points=none`, `=5`)."""
    for branch in branches:
        value = _read_scalar(branch, text)
        if value is not _UNREADABLE and jsonschema_rs.validator_for(branch).is_valid(value):
            return value
    return _UNREADABLE
