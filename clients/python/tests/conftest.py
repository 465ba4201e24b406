"""A real evald for the whole session: the binary from the cargo build, on a free port.

``EVALD_BIN`` names the binary (default: ``<repo>/target/debug/evald``). A missing binary or
a server that does not come up fails the tests; nothing is skipped.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import evald

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_server(*args: str) -> Iterator[str]:
    """An evald with ``args`` on a free port; its URL. Stopped (SIGTERM, then SIGKILL) after."""
    binary = Path(os.environ.get("EVALD_BIN", REPO / "target" / "debug" / "evald"))
    if not binary.is_file():
        pytest.fail(f"evald binary not found at {binary}: run `cargo build` or set EVALD_BIN")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{port}", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        try:
            _wait_until_healthy(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with running_server() as url:
        yield url


KEYS = {
    "acme-rw": ("acme-read-write-0123456789", "acme", "read,write"),
    "acme-ro": ("acme-read-only-0123456789", "acme", "read"),
    "other-rw": ("other-read-write-0123456789", "other", "read,write"),
}
"""API keys of ``keyed_server_url``: name -> (key, tenant, scopes)."""


@pytest.fixture(scope="session")
def keyed_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    keys = tmp_path_factory.mktemp("keys") / "keys"
    keys.write_text("".join(f"{k} {tenant} {scopes}\n" for k, tenant, scopes in KEYS.values()))
    keys.chmod(0o600)
    with running_server("--api-keys-file", str(keys)) as url:
        yield url


def _die_with_parent() -> None:
    """On Linux, the server gets SIGTERM when pytest dies (killed by a CI timeout, say), so
    it never outlives the run even when the fixture's cleanup cannot run."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: object) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            output = log.read().decode(errors="replace")  # type: ignore[attr-defined]
            pytest.fail(f"evald exited with {process.returncode}:\n{output[-4000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"evald did not answer /healthz at {url} within 30 s")


@pytest.fixture
def client(server_url: str) -> Iterator[evald.Client]:
    with evald.Client(server_url) as c:
        yield c


@pytest.fixture
def stream_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"
