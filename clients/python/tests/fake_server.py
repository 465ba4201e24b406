"""A tiny scripted HTTP server for what the real one cannot be made to do on demand
(answer 503 a set number of times, offer Arrow IPC)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """Answers per path: the first ``fail`` requests get 503, the rest ``ok``."""

    fail: int = 0
    retry_after: str | None = "0"
    problem_type: str = "/problems/overloaded"
    ok: Any = field(default_factory=dict)
    openapi: Any = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Seen) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.seen.append(request)
            failures = sum(1 for s in self.seen if s.path == request.path)
        if request.path == "/openapi.json":
            return 200, {"content-type": "application/json"}, json.dumps(self.openapi).encode()
        if failures <= self.fail:
            problem = {"type": self.problem_type, "title": "Overloaded", "status": 503}
            headers = {"content-type": "application/problem+json"}
            if self.retry_after is not None:
                headers["retry-after"] = self.retry_after
            return 503, headers, json.dumps(problem).encode()
        return 200, {"content-type": "application/json"}, json.dumps(self.ok).encode()


@contextmanager
def fake_server(script: Script) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length) if length else b""
            seen = Seen(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            status, headers, payload = script.answer(seen)
            self.send_response(status)
            for name, value in {**headers, "content-length": str(len(payload))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
