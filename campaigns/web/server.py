"""uvicorn in the caller's event loop, with the scheduler daemon beside it or not.

``serve`` and ``demo --serve`` both end up in :func:`run_console`. The listening socket is
bound here first, so a port in use is one clear line (not uvicorn's exit), and port 0 works
(the URL printed is the real one). uvicorn's own signal handling is off: without a daemon,
SIGINT/SIGTERM stop the server; with one, the daemon owns the signals (it drains its calls
in flight), and the server stops when the daemon returns. The access log is off: a request
line would carry ``?token=`` of the events stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from campaigns.errors import UserError
from campaigns.web.app import ConsoleSettings, create_app
from storage.engine import Engine

DaemonRunner = Callable[[threading.Event], Coroutine[Any, Any, int]]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; UserError in one line when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def console_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def run_console(
    engine: Engine,
    settings: ConsoleSettings,
    sock: socket.socket,
    *,
    daemon: DaemonRunner | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Serve the console on ``sock`` until a signal (or the daemon's end); the daemon's exit
    code, else 0."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the signals are ours (see above)
            yield

    config = uvicorn.Config(
        create_app(engine, settings),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    server = Server(config)
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def on_signal() -> None:
        stop.set()
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if on_ready is not None and server.started:
        on_ready()
    code = 0
    try:
        if daemon is None:
            await serving
        else:
            running = asyncio.create_task(daemon(stop))
            done, _ = await asyncio.wait({serving, running}, return_when=asyncio.FIRST_COMPLETED)
            if running not in done:  # the server ended first: let the daemon drain and stop
                os.kill(os.getpid(), signal.SIGTERM)
            code = await running
            server.should_exit = True
            await serving
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        sock.close()
    return code
