"""A real uvicorn server in a background thread, on a loopback socket bound up front (no port races)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from kommutator.app import create_app
from kommutator.config import Settings


def bound_socket() -> tuple[socket.socket, int]:
    """A socket bound to a free loopback port, to hand to ``run_server``; the port goes into the settings."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, int(sock.getsockname()[1])


def free_port() -> int:
    """A port that was free a moment ago, for servers started in another process."""
    sock, port = bound_socket()
    sock.close()
    return port


@contextmanager
def run_server(settings: Settings, sock: socket.socket, *, demo: bool = False) -> Iterator[str]:
    """Serve the app (lifespan on: writer, timers; ``demo``: the demo's extra pages) on ``sock`` until the block
    ends; yield its base URL."""
    config = uvicorn.Config(create_app(settings, demo=demo), log_level="warning", lifespan="on", proxy_headers=False,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-tests", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        if thread.is_alive():  # connections that would not close: stop hard rather than leave it running
            server.force_exit = True
            thread.join(timeout=20)
        sock.close()
        # A server left running would go on routing, sending and timing out conversations in the database the
        # next tests use (on PostgreSQL they share one): fail here, where the cause is, instead of there.
        if thread.is_alive():
            raise RuntimeError("the test server did not stop within 40 s")
