"""Schemathesis hooks for scripts/schemathesis.

openapi/openapi.yaml describes an `application/x-ndjson` stream body as an array whose items are
its lines (OpenAPI 3.1 has no schema for a sequence of JSON texts). This serializer sends each
item as one line of JSON text. A value that is not an array (a negative test of the body's type)
is sent as a single line, and bytes or text as they are.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson_lines(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    lines = value if isinstance(value, list) else [value]
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
