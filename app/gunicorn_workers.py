"""The gunicorn worker and logger classes of the shipped configuration (gunicorn.conf.py).

Three things gunicorn does on its own, before or around the app, that the app cannot change:

- **Slow clients.** A client that sends half a request and then trickles or stalls holds whatever
  reads it: a whole sync worker, or one thread of a gthread worker, until gunicorn's 60 s worker
  timeout (sync) or forever (gthread). `DeadlineSocket` bounds every request: from its first byte,
  the request line, headers and body must arrive within `GEM_READ_TIMEOUT` seconds, however they
  trickle; after that the read raises `ClientTooSlow` (a 408), which the app answers as JSON when
  the body was being read (app/security.py) and the worker answers when the headers were.
- **Its own error pages.** A request line over `limit_request_line` (414), oversized headers (431),
  malformed HTTP (400) are answered by gunicorn itself with an HTML page. `JsonErrors` keeps
  gunicorn's decision (status, access log, warning) but writes `{"error": ...}` instead, with no
  request text echoed back.
- **`Server: gunicorn`.** gunicorn writes it on every answer; `ServerlessResponse` leaves it out
  (nothing in it helps a client; it tells a scanner which exploits to try).

`EscapingLogger` escapes control characters in gunicorn's error and access logs and sends the
app's own loggers (`app.*`, `services.*`) to gunicorn's error log with the same escaping.
"""

from __future__ import annotations

import logging
import socket
import time

import orjson
from gunicorn import glogging, util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker
from werkzeug.exceptions import RequestTimeout

from app.logging_setup import install_log_escaping
from app.settings import Settings

#: the packages whose log records follow GEM_LOG_LEVEL under gunicorn (libraries log warnings and up)
OUR_LOGGERS = ("app", "callbacks", "components", "services")
#: what gunicorn's own error answers say, by status (no request text is echoed back)
ERROR_MESSAGES = {
    400: "bad request: the HTTP request is malformed",
    403: "forbidden",
    408: "the request arrived too slowly; send it again",
    414: "request line too long: shorten the URL",
    417: "expectation failed",
    431: "request headers too large",
    500: "internal error",
    501: "unsupported transfer coding",
}


class ClientTooSlow(RequestTimeout):
    """The client did not send its request within the read deadline (408)."""

    description = ERROR_MESSAGES[408]


class DeadlineSocket(socket.socket):
    """A client socket whose reads stop at a per-request deadline.

    `begin_request()` starts a request; the deadline is armed by its first read (so time spent
    waiting for a kept-alive client's next request does not count) and covers every read until the
    answer starts. Once the answer is being sent (`answered`), a read past the deadline (gunicorn
    draining an unread body) fails as a plain socket timeout, which closes the connection."""

    read_timeout: float = 30.0
    deadline: float | None = None
    answered: bool = False

    @classmethod
    def adopt(cls, sock: socket.socket, read_timeout: float) -> DeadlineSocket:
        adopted = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        adopted.read_timeout = read_timeout
        return adopted

    def begin_request(self) -> None:
        self.deadline = None
        self.answered = False

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        current = self.gettimeout()
        if current == 0.0:  # a non-blocking peek: nothing waits
            return super().recv(bufsize, flags)
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.read_timeout
        remaining = self.deadline - now
        if remaining <= 0:
            self._too_slow()
        super().settimeout(remaining if current is None else min(current, remaining))
        try:
            return super().recv(bufsize, flags)
        except TimeoutError:
            if time.monotonic() >= self.deadline:
                self._too_slow()
            raise  # the caller's own, shorter timeout
        finally:
            super().settimeout(current)

    def sendall(self, data, flags: int = 0) -> None:
        """Send an answer; a client that does not read it gets `read_timeout` per call, not forever."""
        self.answered = True
        current = self.gettimeout()
        if current is None:
            super().settimeout(self.read_timeout)
        try:
            super().sendall(data, flags)
        finally:
            if current is None:
                super().settimeout(None)

    def _too_slow(self) -> None:
        if self.answered:
            raise TimeoutError("client read deadline passed after the answer")
        raise ClientTooSlow()


class ServerlessResponse(wsgi.Response):
    """gunicorn's response without its `Server` header."""

    def default_headers(self) -> list[str]:
        return [line for line in super().default_headers() if not line.lower().startswith("server:")]


class _CapturedAnswer:
    """Stands in for the client socket while gunicorn writes its HTML error page, to learn the status."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float | None:
        return None

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self.data += data

    def status(self) -> int:
        try:
            return int(self.data.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return 500


def json_error_answer(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 error answer with a JSON body."""
    body = orjson.dumps({"error": ERROR_MESSAGES.get(status, reason.lower())})
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class JsonErrors:
    """Worker mixin: gunicorn's own error answers as JSON, slow clients as 408, sockets bounded."""

    read_timeout: float = 30.0

    def init_process(self) -> None:
        self.read_timeout = float(Settings.from_env().read_timeout)
        wsgi.Response = ServerlessResponse  # this worker process builds its answers with it
        super().init_process()

    def handle_error(self, req, client, addr, exc) -> None:
        if getattr(client, "answered", False):  # an answer already went out: never write a second one
            self.log.debug("error after the answer was sent: %s", type(exc).__name__)
            return
        if isinstance(exc, ClientTooSlow):
            self.log.warning("request from ip=%s not received within %.0f s: 408", (addr or ("",))[0],
                             self.read_timeout)
            status, reason = 408, "Request Timeout"
        else:
            captured = _CapturedAnswer()
            super().handle_error(req, captured, addr, exc)  # gunicorn's status, logging and access log
            status = captured.status()
            reason = captured.data.split(b"\r\n", 1)[0].split(b" ", 2)[-1].decode("latin-1") or "Error"
        try:
            util.write_nonblock(client, json_error_answer(status, reason))
        except Exception:
            self.log.debug("failed to send the error answer")


class ThreadWorker(JsonErrors, GunicornThreadWorker):
    """gunicorn's gthread worker with bounded request reads and JSON error answers."""

    def handle(self, conn):
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket.adopt(conn.sock, self.read_timeout)
        conn.sock.begin_request()
        return super().handle(conn)


class SyncWorker(JsonErrors, GunicornSyncWorker):
    """gunicorn's sync worker with bounded request reads and JSON error answers."""

    def handle(self, listener, client, addr):
        client = DeadlineSocket.adopt(client, self.read_timeout)
        client.begin_request()
        return super().handle(listener, client, addr)


class EscapingLogger(glogging.Logger):
    """gunicorn's logger; every line escaped (app/logging_setup.py), the app's loggers included."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        install_log_escaping(self.error_log)
        install_log_escaping(self.access_log)
        root = logging.getLogger()
        root.handlers = list(self.error_log.handlers)  # every logger of the worker writes to gunicorn's error log
        root.setLevel(max(logging.WARNING, self.error_log.level))  # libraries: warnings and errors
        for name in OUR_LOGGERS:  # ours: at gunicorn's level (GEM_LOG_LEVEL)
            logging.getLogger(name).setLevel(self.error_log.level)
