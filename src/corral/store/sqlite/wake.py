"""Wake-ups between the processes of one SQLite file: Unix datagram sockets in a folder of theirs.

Each listener binds one datagram socket in the folder (`<db file>-wake/`, made 0700), named for
its channels, its pid and a random part (`scheduler+workers.4242.9f3a1c07`). A notice is the
datagram `channel NUL payload`, sent without blocking to every socket of its channel found in the
folder, after the write that it announces has committed (the store queues it until then). The
folder's listing is kept and read again when the folder's mtime changes, when that mtime is too
recent to trust (two changes within one tick of the file system's clock share it), or after
REFRESH seconds. A socket whose send is refused (ECONNREFUSED, ENOENT) belongs to a listener that
died without closing (SIGKILL): the sender unlinks it.

A notice is a hint, never a promise: a full socket queue (EAGAIN; Linux queues about ten
datagrams a socket, `net.unix.max_dgram_qlen`) drops it, a listener not bound yet misses it, a
process of another user can't reach the folder, and a submit that joins a caller's transaction
sends none (the store can't see it commit). Every listener's caller keeps a periodic poll (the
worker's `_poll` and heartbeat, the scheduler's idle wait), which is the safety net.

Where a socket's path would pass the 107 bytes a Unix socket address holds, the folder moves to
`$XDG_RUNTIME_DIR` (else `<tmp>/corral-<uid>`, made 0700 and owned by this user), named by a hash
of the database's real path; if even that is too long, or the platform has no AF_UNIX, there are
no wake-ups (`folder_for` gives None) and the store polls as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import select
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence

log = logging.getLogger("corral.store.sqlite")

MAX_PATH = 107
"""Bytes of a Unix socket's path (sun_path holds 108, with the NUL)."""
LONGEST_NAME = len("scheduler+workers.4194304.01234567") + 8
"""A socket's name at most (the contract's channels, a pid up to Linux's pid_max), with room."""
REFRESH = 1.0
"""Seconds a sender trusts its listing of the folder even if its mtime did not change."""
RACY = 0.1
"""A listing taken this soon after the folder's mtime may miss a change made in the same tick."""
Notice = tuple[str, str]


def folder_for(db_path: str) -> str | None:
    """The wake-up folder of the database at `db_path`, or None where there can be none."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    real = os.path.realpath(db_path)
    beside = real + "-wake"
    if _fits(beside):
        return beside
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:20]
    short = os.path.join(_runtime_root(), f"corral-wake-{digest}")
    return short if _fits(short) else None


def _runtime_root() -> str:
    return os.environ.get("XDG_RUNTIME_DIR") or os.path.join(
        tempfile.gettempdir(), f"corral-{os.getuid()}"
    )


def _fits(folder: str) -> bool:
    return len(os.fsencode(folder)) + 1 + LONGEST_NAME <= MAX_PATH


def _make_folder(folder: str) -> None:
    """Make the folder (and the per-user runtime root it may be in) 0700; refuse a folder that
    another user owns."""
    parent = os.path.dirname(folder)
    made = [folder]
    if parent == _runtime_root():
        os.makedirs(parent, mode=0o700, exist_ok=True)
        made.append(parent)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for path in made:
        if os.lstat(path).st_uid != os.getuid():
            raise PermissionError(f"{path} belongs to another user")


def _channels_of(name: str) -> frozenset[str]:
    return frozenset(name.partition(".")[0].split("+"))


class Notifier:
    """Sends notices to the listeners of a folder; shared by a store's threads."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._names: list[tuple[str, frozenset[str]]] = []
        self._mtime_ns = -1
        self._listed_at = 0.0
        self._racy = True
        _NOTIFIERS.add(self)

    def send(self, notices: Iterable[Notice]) -> None:
        """Send each notice (once, however often it was queued) to its channel's listeners;
        never blocks and never raises."""
        wanted = list(dict.fromkeys(notices))
        if not wanted:
            return
        try:
            with self._lock:
                listeners = self._listing()
                for channel, payload in wanted:
                    data = f"{channel}\0{payload}".encode()
                    for name, channels in listeners:
                        if channel in channels:
                            self._send_one(name, data)
        except OSError as exc:  # the folder went away, or a socket could not be made
            log.debug("wake-up not sent: %s", exc)

    def _listing(self) -> list[tuple[str, frozenset[str]]]:
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return []  # no listener ever bound here
        now = time.monotonic()
        if mtime != self._mtime_ns or self._racy or now - self._listed_at > REFRESH:
            self._names = [(n, _channels_of(n)) for n in os.listdir(self.folder) if "." in n]
            self._mtime_ns, self._listed_at = mtime, now
            self._racy = time.time_ns() - mtime < RACY * 1e9
        return self._names

    def _send_one(self, name: str, data: bytes) -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        path = os.path.join(self.folder, name)
        try:
            self._sock.sendto(data, path)
        except BlockingIOError:
            pass  # its buffer is full: it has notices to read already, and polls besides
        except (ConnectionRefusedError, FileNotFoundError):  # its listener died unclosed
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            self._mtime_ns = -1  # list again next time
        except OSError as exc:
            log.debug("wake-up to %s not sent: %s", path, exc)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a thread of the parent may have held it
        self._sock = None


_NOTIFIERS: weakref.WeakSet[Notifier] = weakref.WeakSet()
_LISTENERS: weakref.WeakSet[SocketListener] = weakref.WeakSet()


def _reset_after_fork() -> None:
    """In a forked child (a `process` handler): fresh locks and sockets for the senders, and the
    parent's listening sockets closed (not unlinked: they are still the parent's)."""
    for notifier in list(_NOTIFIERS):
        notifier._after_fork()
    for listener in list(_LISTENERS):
        listener._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)


class SocketListener:
    """A bound socket in the folder; `wait(timeout)` returns the notices queued on it (empty on
    timeout). Closed, it unbinds; a later wait binds again (the scheduler's stand-by closes its
    listener and leads again later). If it can't bind, a wait only sleeps (the caller polls)."""

    def __init__(self, folder: str, channels: Sequence[str]) -> None:
        self.folder = folder
        self.channels = frozenset(channels)
        self._sock: socket.socket | None = None
        self.path: str | None = None
        self._closed = threading.Event()
        _LISTENERS.add(self)
        self._open()

    def _open(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        name = f"{'+'.join(sorted(self.channels))}.{os.getpid()}.{secrets.token_hex(4)}"
        path = os.path.join(self.folder, name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            _make_folder(self.folder)
            sock.bind(path)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            log.warning("no wake-ups in %s (%s): polling instead", self.folder, exc)
            return None
        self._sock, self.path = sock, path
        self._closed.clear()
        return sock

    def wait(self, timeout: float) -> list[Notice]:
        sock = self._open()
        if sock is None:
            self._closed.wait(timeout)
            return []
        notices = self._drain(sock)
        if notices or timeout <= 0:
            return notices
        if _readable(sock, timeout):
            return self._drain(sock)
        return []

    def _drain(self, sock: socket.socket) -> list[Notice]:
        notices: list[Notice] = []
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return notices
            except OSError:  # closed from another thread
                return notices
            channel, _, payload = data.decode(errors="replace").partition("\0")
            if channel in self.channels:
                notices.append((channel, payload))

    def close(self) -> None:
        sock, path = self._sock, self.path
        self._sock, self.path = None, None
        self._closed.set()
        if sock is not None:
            sock.close()
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _after_fork(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self.path = None, None


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether `sock` has a datagram within `timeout` seconds (poll: no FD_SETSIZE limit)."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(timeout * 1000))
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):  # closed meanwhile
        return False
