"""A client-side deadline for database work: a watchdog that breaks the connection of an overdue call.

A frozen database server (process paused, host stalled) still accepts TCP and its kernel still
acknowledges every byte, so neither the server's `statement_timeout` nor TCP keepalives or
`tcp_user_timeout` ever fire for a query in flight: the client waits forever in `recv`. The only
way out is on the client: when an operation passes its deadline, the watchdog shuts the socket of
the connection it uses (PostgreSQL; the blocked call then fails at once with "server closed the
connection", and the pool drops that connection) or interrupts it (SQLite, `sqlite3.interrupt`).

One watchdog per store and process, its thread started on first use (again in a forked child) and
asleep while no operation runs; an operation costs a lock and a set insertion, no thread switch.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

#: how often the watchdog looks at the running operations while some run (the deadline's precision)
TICK_S = 0.05


class Operation:
    """One piece of database work with a deadline, and the connections it has checked out."""

    __slots__ = ("connections", "deadline", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self.connections: dict[int, Any] = {}  # id(pool record) -> DBAPI connection

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class Watchdog:
    """Breaks the connections of operations that run past their deadline."""

    def __init__(self, name: str = "history-db-watchdog") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._operations: set[Operation] = set()
        self._active = threading.Event()  # set while some operation runs
        self._local = threading.local()
        self._owner_pid: int | None = None

    def current(self) -> Operation | None:
        """The operation this thread is running, if any."""
        return getattr(self._local, "operation", None)

    @contextmanager
    def operation(self, seconds: float | None) -> Iterator[Operation | None]:
        """Run the block under a deadline of `seconds` (None: no deadline). Nested blocks share the
        outer deadline."""
        outer = self.current()
        if outer is not None or seconds is None:
            yield outer
            return
        self._ensure_thread()
        operation = Operation(seconds)
        with self._lock:
            self._operations.add(operation)
        if not self._active.is_set():
            self._active.set()
        self._local.operation = operation
        try:
            yield operation
        finally:
            self._local.operation = None
            with self._lock:
                self._operations.discard(operation)
                operation.connections.clear()

    def attach(self, record: Any, connection: Any) -> Operation | None:
        """Note that this thread's operation now uses `connection` (checked out from the pool).
        The caller refuses to start work for an operation already past its deadline."""
        operation = self.current()
        if operation is None:
            return None
        with self._lock:
            operation.connections[id(record)] = connection
        return operation

    def detach(self, record: Any) -> None:
        """The connection of `record` went back to the pool: no operation of ours uses it now."""
        operation = self.current()
        if operation is not None:
            with self._lock:
                operation.connections.pop(id(record), None)

    def _ensure_thread(self) -> None:
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._operations = set()  # a forked child inherits none of its parent's operations
            threading.Thread(target=self._run, name=self._name, daemon=True).start()
            self._owner_pid = os.getpid()

    def _run(self) -> None:
        while True:
            self._active.wait()
            time.sleep(TICK_S)
            now = time.monotonic()
            with self._lock:
                if not self._operations:
                    self._active.clear()
                    continue
                for operation in self._operations:
                    if operation.expired or operation.deadline > now:
                        continue
                    operation.expired = True
                    log.warning("history database call over its %.1f s deadline: breaking its connection",
                                operation.seconds)
                    for connection in operation.connections.values():
                        _break(connection)


def _break(connection: Any) -> None:
    """Make a blocked call on `connection` return now, without freeing anything under it."""
    try:
        if hasattr(connection, "interrupt"):  # sqlite3: thread-safe by design
            connection.interrupt()
            return
        pgconn = getattr(connection, "pgconn", None)  # psycopg 3
        fd = pgconn.socket if pgconn is not None else connection.fileno()
        # shutdown acts on the socket itself, so a duplicate descriptor is enough and closing the
        # duplicate leaves the driver's descriptor (and its memory) alone
        with socket.socket(fileno=os.dup(fd)) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except Exception as exc:  # already closed: nothing is blocked on it
        log.debug("could not break a database connection: %s", type(exc).__name__)
