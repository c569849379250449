"""``run --listen HOST:PORT``: the webhook receiver, served inside the daemon's event loop.

Routes (a small Starlette app on uvicorn, sharing the daemon's loop and database thread):

* ``POST /webhooks/{provider}``: the signature is checked first with the provider's
  :meth:`~scheduler.providers.base.EventSource.verify_event` and the secret it signs with
  (a bad or missing one: 401, nothing changes); a body that is not one of its events: 400;
  otherwise the event is stored (``scheduler.inbox``) and only then answered 200 (a replay is
  answered 200 too, ``"duplicate": true``, and changes nothing). If the database cannot take
  it, 503: the provider's own retry (if any) brings it again, and the poll sweep catches it
  otherwise. A provider that pushes nothing, or is not driven, is 404.
* ``GET /`` and ``GET /health``: 200, for scripts that wait for the receiver.

The secret never reaches a log line, an answer or an error (it is registered with the log
redaction by ``run``). uvicorn is started without its own signal handling: the daemons own
SIGTERM/SIGINT, and :meth:`Receiver.stop` ends the server when they have drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scheduler.errors import ProtocolError
from scheduler.inbox import Inbox
from scheduler.providers.base import EventSource

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger("vaani.webhooks")

#: the largest event body accepted (VaniAgent's are well under a kilobyte)
MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """One provider's webhook endpoint: how its events are read, and the secret they carry."""

    provider: str
    source: EventSource
    secret: str = field(repr=False)


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` -> ("127.0.0.1", 8080); ``"[::1]:80"`` and ``":80"`` too.
    ValueError with what a valid value looks like."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen: expected HOST:PORT (e.g. 127.0.0.1:8080), got {text!r}")
    return host, int(port)


def _error(status: int, message: str) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status)


def build_app(inbox: Inbox, channels: Mapping[str, Channel]) -> Starlette:
    """The receiver's ASGI app."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "webhooks": sorted(channels)})

    async def receive(request: Request) -> Response:
        provider = request.path_params["provider"]
        channel = channels.get(provider)
        if channel is None:
            return _error(404, f"no webhooks are received for provider {provider!r}")
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY:  # refused before it is read
            return _error(413, f"the event body is over {MAX_BODY} bytes")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, f"the event body is over {MAX_BODY} bytes")
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not channel.source.verify_event(headers, body, channel.secret):
            log.warning(
                "webhook refused: bad or missing signature",
                extra={"event": "webhook_unsigned", "provider": provider},
            )
            return _error(401, "invalid or missing signature")
        try:
            event = channel.source.parse_event(body)
        except ProtocolError as exc:
            return _error(400, str(exc))
        try:
            stored = await inbox.receive(provider, event)
        except Exception:
            log.exception(
                "webhook not stored", extra={"event": "webhook_error", "provider": provider}
            )
            return _error(503, "the event could not be stored; send it again")
        return JSONResponse({"status": "ok", "duplicate": not stored})

    return Starlette(
        routes=[
            Route("/", health, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/webhooks/{provider}", receive, methods=["POST"]),
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """The receiver's listening socket, bound before the daemons start (a port in use stops
    ``run`` with one line). Raises OSError naming the address."""
    from scheduler.sandbox.server import bind as bind_socket

    return bind_socket(host, port)


def _server(config: uvicorn.Config) -> uvicorn.Server:
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield  # the daemons handle the signals

    return _Server(config)


class Receiver:
    """The served receiver plus the sweep applying pending events; start, then stop."""

    def __init__(self, inbox: Inbox, channels: Mapping[str, Channel], sock: socket.socket):
        import uvicorn

        self.inbox = inbox
        self.sock = sock
        self.server = _server(
            uvicorn.Config(
                build_app(inbox, channels),
                log_level="warning",
                log_config=None,  # uvicorn's warnings go through our handlers (and redaction)
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
                server_header=False,
            )
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.server.serve(sockets=[self.sock])),
            asyncio.create_task(self.inbox.run_sweeps()),
        ]
        while not self.server.started:
            if self._tasks[0].done():
                await self._tasks[0]  # raises what stopped it
                return
            await asyncio.sleep(0.01)
        log.info("receiving webhooks", extra={"event": "listening", "port": self.port})

    async def stop(self) -> None:
        self.server.should_exit = True
        serve, sweeps = self._tasks or (None, None)
        if sweeps is not None:
            sweeps.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeps
        if serve is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await serve
        self.sock.close()
