"""The watched drop folder: every complete record that lands in it becomes one job, once.

A scan groups the folder's files into records by name (`X.cfg` + `X.dat` [+ `X.hdr`, `X.inf`], one
`X.cff`, one `.npy` / `.csv` / `.txt` / `.tsv` window) and takes a record only when it is complete
and every file of it has stopped changing for `stable_s` (files written in pieces, the `.dat`
before its `.cfg`). Its identity is the SHA-256 of its contents (names aside): the job's unique
`dedupe_key` in the database decides, across restarts, machines and racing scanners, that it is
analysed once. Whatever cannot be a record (a `.cfg` whose `.dat` never came, an unknown file, a
record over the size limit) becomes a failed job with the reason: the rejected list. Files are
deleted only when `delete` is set, and only once their job has finished.

Files whose names start with "." or end with .tmp / .part / ~ are writers' temporary files and are
not looked at. Peers: a record named `anything__<sender>__<receiver>.cfg` (microgrid ids) is the
transfer between those peers; otherwise the default sender and receiver.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from services.comtrade_ingest import MAX_RECORD_BYTES
from services.grid import DEFAULT_RECEIVER, DEFAULT_SENDER, RECEIVERS, SENDERS
from services.ingest import safe_filename
from services.jobs.store import FINISHED, JobStore

log = logging.getLogger(__name__)

WATCH_SOURCE = "watch"
WINDOW_SUFFIXES = (".npy", ".csv", ".txt", ".tsv")
TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~", ".swp")
#: the order a record's files are hashed in (so the names and the listing order do not matter)
_ROLE_ORDER = (".cfg", ".cff", ".dat", ".hdr", ".inf", *WINDOW_SUFFIXES)
_MEMO_LIMIT = 20_000
T = TypeVar("T")


@dataclass(frozen=True)
class FileState:
    path: Path
    size: int
    mtime_ns: int

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


@dataclass
class ScanReport:
    """What one scan did (for logs, tests and the benchmark)."""

    queued: list[str] = field(default_factory=list)  # job ids
    rejected: list[str] = field(default_factory=list)  # job ids
    waiting: list[str] = field(default_factory=list)  # record names not complete or not stable yet
    known: int = 0
    deleted: list[str] = field(default_factory=list)


def peers_from_name(stem: str, default_sender: str = DEFAULT_SENDER,
                    default_receiver: str = DEFAULT_RECEIVER) -> tuple[str, str]:
    """(sender, receiver) from a name ending `__<sender>__<receiver>`, else the defaults."""
    parts = stem.split("__")
    if len(parts) >= 3 and parts[-2] in SENDERS and parts[-1] in RECEIVERS and parts[-2] != parts[-1]:
        return parts[-2], parts[-1]
    return default_sender, default_receiver


def record_hash(files: list[tuple[str, bytes]]) -> str:
    """SHA-256 of a record's contents, by file role (suffix), independent of names and order."""
    digest = hashlib.sha256()
    for name, data in sorted(files, key=lambda item: _role_rank(item[0])):
        suffix = Path(name).suffix.lower().encode()
        digest.update(len(suffix).to_bytes(2, "big") + suffix + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _role_rank(name: str) -> tuple[int, str]:
    suffix = Path(name).suffix.lower()
    return (_ROLE_ORDER.index(suffix) if suffix in _ROLE_ORDER else len(_ROLE_ORDER), suffix)


@dataclass(frozen=True)
class RecordGroup(Generic[T]):
    """One record made of files that share a stem: its name (the main file's), its files, and what
    is wrong with it: `missing` names the other half of a COMTRADE pair that is absent; `unknown`
    says the file is no record at all."""

    name: str
    parts: tuple[T, ...]
    missing: str | None = None
    unknown: bool = False


def group_record_files(stem: str, parts: Mapping[str, T]) -> list[RecordGroup[T]]:
    """The records among the files of one stem, given as {suffix (lower case): file}: `X.cfg` +
    `X.dat` (+ `X.hdr`, `X.inf`), `X.cff`, one window per `.npy` / `.csv` / `.txt` / `.tsv`.

    Shared by the watched folder (which waits for a missing half) and batch archives (which
    reject it at once). `.hdr` / `.inf` beside a `.cff` are ignored, as uploads do."""
    suffixes = set(parts)
    companions = [parts[s] for s in (".hdr", ".inf") if s in parts]
    groups: list[RecordGroup[T]] = []
    if ".cfg" in suffixes and ".dat" in suffixes:
        groups.append(RecordGroup(f"{stem}.cfg", (parts[".cfg"], parts[".dat"], *companions)))
        suffixes -= {".cfg", ".dat", ".hdr", ".inf"}
    elif ".cfg" in suffixes or (".dat" in suffixes and ".cff" not in suffixes):
        missing, present = (".dat", ".cfg") if ".cfg" in suffixes else (".cfg", ".dat")
        groups.append(RecordGroup(f"{stem}{present}", (parts[present], *companions), missing=missing))
        suffixes -= {".cfg", ".dat", ".hdr", ".inf"}
    for suffix in sorted(suffixes):
        if suffix in (".hdr", ".inf", ".dat"):
            continue
        name = f"{stem}{suffix}"
        groups.append(RecordGroup(name, (parts[suffix],), unknown=not (suffix == ".cff" or suffix in WINDOW_SUFFIXES)))
    return groups


class FolderWatcher:
    """Scans one folder and turns its complete records into jobs (`scan`); `submit` hands a new
    job to the engine. Holds only a memo of files already hashed (a cache: losing it costs a
    re-read, never a second analysis)."""

    def __init__(self, folder: str | Path, jobs: JobStore, submit: Callable[[str], None], *,
                 stable_s: float = 0.5, pair_timeout_s: float = 300.0, delete: bool = False,
                 max_bytes: int = MAX_RECORD_BYTES, sender: str = DEFAULT_SENDER,
                 receiver: str = DEFAULT_RECEIVER, relay_connection: str | None = None) -> None:
        self.folder = Path(folder)
        self.jobs = jobs
        self.submit = submit
        self.stable_s = float(stable_s)
        self.pair_timeout_s = float(pair_timeout_s)
        self.delete = bool(delete)
        self.max_bytes = int(max_bytes)
        self.sender, self.receiver = sender, receiver
        #: how the relay of these records compares the currents (services.inference.connections)
        self.relay_connection = relay_connection
        self._memo: dict[tuple[FileState, ...], str] = {}  # files as seen -> dedupe key
        self._to_delete: dict[str, tuple[FileState, ...]] = {}  # dedupe key -> files, once finished
        self._folder_error: str | None = None  # the folder's last listing error (logged once)

    @property
    def lock_name(self) -> str:
        return f"watch:{os.path.realpath(self.folder)}"[:200]

    # -- one scan -------------------------------------------------------------------------------
    def scan(self, now: float | None = None) -> ScanReport:
        """Look at the folder once: queue every new complete record, reject what cannot be one."""
        now = time.time() if now is None else now
        report = ScanReport()
        candidates: list[tuple[str, tuple[FileState, ...], list[tuple[str, bytes]] | None, str | None, str]] = []
        for name, group, problem in self._records(now, report):
            if group in self._memo:
                report.known += 1
                continue
            files, reason = None, problem
            if reason is None:
                files, reason = self._read(group)
            key = "watch:" + (record_hash(files) if files is not None else _listing_hash(group))
            candidates.append((name, group, files, reason, key))
        if len(self._memo) > _MEMO_LIMIT:
            self._memo.clear()
        taken = self.jobs.known(candidate[-1] for candidate in candidates)
        for name, group, files, reason, key in candidates:
            if key in taken:
                self._memo[group] = key
                report.known += 1
                self._remember_for_deletion(key, group)
                continue
            sender, receiver = peers_from_name(group[0].path.stem, self.sender, self.receiver)
            job_id = self.jobs.create(source=WATCH_SOURCE, name=safe_filename(name), files=files, sender=sender, receiver=receiver,
                                      content_hash=key.removeprefix("watch:") if files is not None else None,
                                      dedupe_key=key, error=reason, options={"relay_connection": self.relay_connection})
            self._memo[group] = key  # only once the database knows it: a failed insert is tried again
            if job_id is None:  # another scanner took it a moment ago
                report.known += 1
            elif reason is not None:
                log.warning("watch folder: rejected %s: %s", name, reason)
                report.rejected.append(job_id)
            else:
                try:
                    self.submit(job_id)
                except Exception as exc:  # the engine cannot take it now: forget it, the next scan retries
                    log.error("watch folder: could not queue %s (%s); will try again", name, exc)
                    self.jobs.discard(job_id)
                    self._memo.pop(group, None)
                    continue
                report.queued.append(job_id)
            self._remember_for_deletion(key, group)
        if self.delete:
            report.deleted = self._delete_finished()
        return report

    def _records(self, now: float, report: ScanReport):
        """(name, files, reason to reject or None) of each record ready to be taken."""
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            if str(exc) != self._folder_error:  # once, not at every scan
                log.error("watch folder %s cannot be read: %s", self.folder, exc)
                self._folder_error = str(exc)
            return
        if self._folder_error is not None:
            log.info("watch folder %s readable again", self.folder)
            self._folder_error = None
        by_stem: dict[str, dict[str, FileState]] = {}
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except OSError:  # removed while we looked
                continue
            state = FileState(Path(entry.path), stat.st_size, stat.st_mtime_ns)
            by_stem.setdefault(Path(name).stem, {})[state.suffix] = state
        for stem, parts in sorted(by_stem.items()):
            newest_age = min(now - part.mtime_ns / 1e9 for part in parts.values())
            oldest_age = max(now - part.mtime_ns / 1e9 for part in parts.values())
            if newest_age < self.stable_s:
                report.waiting.append(stem)
                continue
            yield from self._complete(stem, parts, oldest_age, report)

    def _complete(self, stem: str, parts: dict[str, FileState], age: float, report: ScanReport):
        for group in group_record_files(stem, parts):
            if group.missing is not None:  # half a pair: wait for the other half, up to the timeout
                if age < self.pair_timeout_s:
                    report.waiting.append(stem)
                else:
                    yield (group.name, group.parts,
                           f"{group.name}: no {group.missing} arrived within {self.pair_timeout_s:g} s; a COMTRADE "
                           "record needs both the .cfg and the .dat (or one .cff)")
            elif group.unknown:
                name = group.parts[0].path.name
                yield (name, group.parts, f"{name}: not a record; the watch folder takes "
                       "COMTRADE (.cfg + .dat, .cff) and .npy / .csv / .txt / .tsv windows")
            else:
                yield group.parts[0].path.name if len(group.parts) == 1 else group.name, group.parts, None

    def _read(self, group: tuple[FileState, ...]) -> tuple[list[tuple[str, bytes]] | None, str | None]:
        total = sum(state.size for state in group)
        if total > self.max_bytes:
            return None, (f"{group[0].path.name}: the record is {total / 1e6:.1f} MB, more than the "
                          f"{self.max_bytes / 2**20:g} MB accepted")
        files = []
        for state in group:
            try:
                files.append((state.path.name, state.path.read_bytes()))
            except OSError as exc:
                return None, f"{state.path.name}: cannot be read ({exc.strerror or type(exc).__name__})"
        return files, None

    # -- deleting (GEM_WATCH_DELETE) ------------------------------------------------------------
    def _remember_for_deletion(self, key: str, group: tuple[FileState, ...]) -> None:
        if self.delete:
            self._to_delete[key] = group

    def _delete_finished(self) -> list[str]:
        if not self._to_delete:
            return []
        states = self.jobs.known(self._to_delete)
        deleted = []
        for key, state in states.items():
            if state not in FINISHED:
                continue
            for file in self._to_delete.pop(key):
                try:
                    current = file.path.stat()
                    if (current.st_size, current.st_mtime_ns) == (file.size, file.mtime_ns):
                        file.path.unlink()
                        deleted.append(file.path.name)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("watch folder: cannot delete %s: %s", file.path.name, exc)
        return deleted


def _listing_hash(group: tuple[FileState, ...]) -> str:
    """Identity of a record that could not be read: its names, sizes and times."""
    text = "|".join(f"{state.path.name}:{state.size}:{state.mtime_ns}" for state in group)
    return "listing-" + hashlib.sha256(text.encode()).hexdigest()[:56]
