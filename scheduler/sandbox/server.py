"""Serve the sandbox: one process, one asyncio loop (uvloop and httptools when installed).

``serve(config)`` binds the socket itself (so ``--port 0`` can report the port it got), prints
``sandbox listening on http://HOST:PORT`` once requests are accepted, writes the same URL to
``--ready-file`` when asked, and returns after SIGTERM or SIGINT (the CLI then exits 0).

uvicorn and the app (Starlette) are imported when :func:`serve` runs, not with this module:
the sandbox is a test tool, and nothing else in the product should pay for its server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from scheduler.sandbox.config import SandboxConfig

if TYPE_CHECKING:
    import uvicorn


def _server(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn server that, after shutting down on a signal, just stops (exit 0) instead of
    re-raising the signal it caught as uvicorn does."""
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return _Server(config)


class _QuietDrops(logging.Filter):
    """Hide uvicorn's traceback for the connections the ``lost`` fault drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, ConnectionAbortedError) and "sandbox fault" in str(exc))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: the OS picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop comes with the `sandbox` extra (uvicorn[standard])
        return None
    return uvloop.new_event_loop


async def _serve(config: SandboxConfig, sock: socket.socket) -> None:
    import uvicorn

    from scheduler.sandbox.app import build_app

    app = build_app(config)
    server = _server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            server_header=False,
            proxy_headers=False,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.005)
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{port}"
    if config.ready_file:
        Path(config.ready_file).write_text(url + "\n")
    sys.stdout.write(f"sandbox listening on {url}\n")
    sys.stdout.flush()
    background = app.front.background
    helper = asyncio.create_task(background(app.state)) if background is not None else None
    try:
        await task
    finally:
        if helper is not None:
            helper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await helper


def serve(config: SandboxConfig) -> None:
    """Run the sandbox until SIGTERM/SIGINT. Raises OSError when the port cannot be bound."""
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    sock = bind(config.host, config.port)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(config, sock))
