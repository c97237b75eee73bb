"""Real servers for the tests, on 127.0.0.1 with ephemeral ports (never mocks of gRPC or HTTP)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from service.server.app import _Uvicorn


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (port 0) in a thread; yields its base URL."""
    server = _Uvicorn(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, name="test-asgi", daemon=True)
    thread.start()
    try:
        while not server.started:  # uvicorn offers no event to wait on
            assert thread.is_alive(), "uvicorn failed to start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
