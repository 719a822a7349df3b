"""A TCP proxy in front of a real server that a test can freeze, stop and bring back.

- `freeze()`: like a paused (SIGSTOP) database: connections still open and bytes are still taken
  (the kernel ACKs them) but nothing is forwarded and nothing answers;
- `stop()`: like a stopped database: the port refuses connections and open ones are closed;
- `resume()`: forwards again (after a freeze, what was held is delivered; after a stop, it listens
  again on the same port).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class FreezableProxy:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = 0
        self._running = threading.Event()  # set: bytes flow
        self._running.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._listen()

    # -- control ---------------------------------------------------------------------------------
    def freeze(self) -> None:
        self._running.clear()

    def stop(self) -> None:
        """Refuse new connections and close the open ones."""
        self._running.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept() (Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def resume(self) -> None:
        if self._listener is None:
            self._listen()
        self._running.set()

    def close(self) -> None:
        self._closed.set()
        self.stop()

    # -- plumbing --------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by stop()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self._sockets.add(client)
        self._running.wait()  # a frozen server answers no new connection either
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.add(server)
        pairs = {client: server, server: client}
        # a selector, not select.select: in a long test session this process holds over 1,024
        # descriptors, which select() cannot watch (ValueError, and the relay would drop the link)
        watcher = selectors.DefaultSelector()
        for sock in pairs:
            watcher.register(sock, selectors.EVENT_READ)
        try:
            while not self._closed.is_set() and client.fileno() != -1 and server.fileno() != -1:
                for key, _ in watcher.select(0.1):  # a socket closed by stop() leaves the loop above
                    sock = key.fileobj
                    data = sock.recv(65536)
                    if not data:
                        return
                    self._running.wait()  # frozen: hold the bytes until resumed (or closed)
                    pairs[sock].sendall(data)
        except (OSError, ValueError):  # closed by stop() meanwhile
            return
        finally:
            watcher.close()
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._sockets.discard(client)
                self._sockets.discard(server)
