"""Batch analysis: a whole archive (zip, tar, tar.gz) or an allowed server folder of records,
analysed at once into the history under one batch id, with a summary, a table and a CSV.

Reading is defensive, because an archive is a file from anyone: names that climb out (`..`), absolute
names, links, devices and encrypted members are refused one by one (listed as rejected with the
reason); too many files, or more bytes than the limit once decompressed (a zip bomb), refuse the
whole batch before the excess is decompressed. A server folder is taken only under one of the roots
the administrator allowed (`GEM_BATCH_ROOTS`), after resolving links; inside it links are not followed.

Records are grouped as the watched folder groups them (`services.jobs.watch.group_record_files`):
`X.cfg` + `X.dat` (+ `.hdr`, `.inf`), `X.cff`, one `.npy` / `.csv` / `.txt` / `.tsv` window. Each record
becomes one job of the batch (`JobStore.create_many`), run by the record pipeline's one task
(`analyse_record`) on whichever engine runs it; what cannot be a record is a failed job with the
reason, so the rejected list and the counts come from the same table. Cancel marks the batch's
unfinished jobs cancelled (`JobStore.cancel_batch`): queued ones are then skipped by the task.

No Dash and no Flask here; the Batch page (callbacks/batch.py) and `/api/batches` call these.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import stat
import tarfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select

from services.comtrade_ingest import MAX_RECORD_BYTES
from services.grid import DEFAULT_RECEIVER, DEFAULT_SENDER
from services.history.store import _csv_cell
from services.ingest import safe_filename
from services.jobs.store import BATCH_SOURCE, CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobStore, is_job_id
from services.jobs.tasks import RecordPipeline, analyse_record
from services.jobs.watch import TEMPORARY_SUFFIXES, group_record_files, peers_from_name, record_hash

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_BATCH_FILES = 20_000
#: seconds between two keep-alives of a running batch (well under the recovery's 120 s)
KEEP_ALIVE_S = 30.0
#: how many rejected records a summary lists (the counts cover them all)
MAX_LISTED_REJECTED = 500
#: the columns of a batch's CSV: the record and its job, then the analysis as the history keeps it
CSV_COLUMNS: tuple[str, ...] = (
    "record", "state", "error", "analysis_id", "created_at", "sender", "receiver", "label", "confidence",
    "category", "equipment", "kind", "unknown", "severity", "transfer_status", "headline", "impact_summary",
    "model_fingerprint",
)
_RESULT_COLUMNS = ("label", "confidence", "category", "equipment", "kind", "unknown", "severity",
                   "transfer_status", "headline")


class BatchError(ValueError):
    """The batch as a whole cannot be taken (not an archive, too large, a folder not allowed); the
    message is for people and names no server path beyond what they gave."""


@dataclass(frozen=True)
class BatchLimits:
    """How much one batch may hold: `max_bytes` bounds the archive as uploaded AND the bytes read
    out of it or out of a folder (decompressed); `max_files` the files listed; `max_record_bytes`
    one record (the upload limit)."""

    max_bytes: int = DEFAULT_MAX_BATCH_BYTES
    max_files: int = DEFAULT_MAX_BATCH_FILES
    max_record_bytes: int = MAX_RECORD_BYTES


@dataclass(frozen=True)
class BatchRecord:
    """One record of a batch: its name (path inside the archive or folder), files and transfer."""

    name: str
    files: tuple[tuple[str, bytes], ...]
    sender: str = DEFAULT_SENDER
    receiver: str = DEFAULT_RECEIVER


@dataclass(frozen=True)
class Rejected:
    """A file or record of the batch that will not be analysed, and why."""

    name: str
    reason: str


@dataclass
class BatchContents:
    """What an archive or folder holds, read and grouped: records to analyse and rejected items."""

    source_name: str
    records: list[BatchRecord] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.records) + len(self.rejected)


# -- reading an archive ---------------------------------------------------------------------------
def read_archive(data: bytes, filename: str, limits: BatchLimits | None = None) -> BatchContents:
    """Open an uploaded zip / tar / tar.gz (by its bytes, whatever its name says) and group its
    records. Raises BatchError for what is not an archive or is over a limit."""
    limits = limits or BatchLimits()
    shown = safe_filename(filename)
    if len(data) > limits.max_bytes:
        raise BatchError(f"{shown}: the archive is {len(data) / 2**20:.1f} MB, more than the "
                         f"{limits.max_bytes / 2**20:g} MB accepted")
    reader = _Reader(limits)
    buffer = io.BytesIO(data)
    if zipfile.is_zipfile(buffer):
        _read_zip(buffer, shown, reader)
    else:
        buffer.seek(0)
        try:
            archive = tarfile.open(fileobj=buffer, mode="r:*")  # noqa: SIM115 (closed just below)
        except (tarfile.TarError, EOFError, OSError):
            raise BatchError(f"{shown}: not a zip, tar or tar.gz archive") from None
        with archive:
            _read_tar(archive, shown, reader)
    return reader.contents(shown)


def _read_zip(buffer: io.BytesIO, shown: str, reader: _Reader) -> None:
    try:
        archive = zipfile.ZipFile(buffer)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BatchError(f"{shown}: not a readable zip archive ({exc})") from None
    with archive:
        members = archive.infolist()
        reader.count(len(members))
        for info in members:
            if info.is_dir():
                continue
            name = reader.member_name(info.filename)
            if name is None:
                continue
            mode = (info.external_attr >> 16) & 0o170000
            if mode and not stat.S_ISREG(mode):
                reader.reject(name, "a link or special file, not read")
                continue
            if info.flag_bits & 0x1:
                reader.reject(name, "encrypted, not read")
                continue
            if not reader.fits(name, info.file_size):
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(reader.room() + 1)  # never more than allowed, whatever the header says
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                reader.reject(name, f"cannot be read ({type(exc).__name__})")
                continue
            reader.add(name, data)


def _read_tar(archive: tarfile.TarFile, shown: str, reader: _Reader) -> None:
    try:
        for member in archive:  # headers one by one: a bomb of tiny members stops at max_files
            reader.count(1)
            if member.isdir():
                continue
            name = reader.member_name(member.name)
            if name is None:
                continue
            if not member.isreg():
                reader.reject(name, "a link or special file, not read")
                continue
            if not reader.fits(name, member.size):
                continue
            extracted = archive.extractfile(member)
            if extracted is None:
                reader.reject(name, "cannot be read")
                continue
            reader.add(name, extracted.read(reader.room() + 1))
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise BatchError(f"{shown}: the archive is damaged ({type(exc).__name__})") from None


class _Reader:
    """Counts files and bytes against the limits, checks names, collects files by folder and stem."""

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self.files = 0
        self.bytes = 0
        self.declared = 0
        self.by_stem: dict[tuple[str, str], dict[str, tuple[str, bytes]]] = {}
        self.rejected: list[Rejected] = []

    def count(self, files: int) -> None:
        self.files += files
        if self.files > self.limits.max_files:
            raise BatchError(f"more than {self.limits.max_files} files in one batch; split it")

    def member_name(self, raw: str) -> str | None:
        """The member's relative POSIX name, or None (rejected or skipped) for an unsafe one."""
        text = str(raw).replace("\\", "/")
        shown = safe_filename(text)
        if "\x00" in text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
            self.reject(shown, "an absolute name, not read")
            return None
        parts = [part for part in PurePosixPath(text).parts if part not in ("", ".")]
        if ".." in parts:
            self.reject(shown, "a name that leaves the archive ('..'), not read")
            return None
        if not parts:
            return None
        base = parts[-1]
        if base.startswith(".") or base.lower().endswith(TEMPORARY_SUFFIXES) or \
                any(part.startswith(".") for part in parts[:-1]) or "__MACOSX" in parts:
            return None  # hidden files and folders, writers' temporary files: not records
        return "/".join(parts)

    def fits(self, name: str, declared: int) -> bool:
        """Whether a member of `declared` bytes may be read. Every member's size counts towards
        the batch's total, read or not: skipping a member of a compressed tar decompresses it."""
        self.declared += max(0, int(declared))
        if self.declared > self.limits.max_bytes:
            raise BatchError(f"the batch holds more than {self.limits.max_bytes / 2**20:g} MB once "
                             "decompressed; split it")
        if declared > self.limits.max_record_bytes:
            self.reject(name, f"{declared / 2**20:.1f} MB, more than the {self.limits.max_record_bytes / 2**20:g} MB "
                              "a record may have")
            return False
        return True

    def room(self) -> int:
        """Bytes that may still be read for one member: the record limit, within the batch's total."""
        return max(0, min(self.limits.max_record_bytes, self.limits.max_bytes - self.bytes))

    def add(self, name: str, data: bytes) -> None:
        if len(data) > self.room():  # the header lied about the size
            if len(data) > self.limits.max_record_bytes:
                self.reject(name, f"more than the {self.limits.max_record_bytes / 2**20:g} MB a record may have")
                return
            raise BatchError(f"the batch holds more than {self.limits.max_bytes / 2**20:g} MB once "
                             "decompressed; split it")
        self.bytes += len(data)
        path = PurePosixPath(name)
        folder = str(path.parent) if str(path.parent) != "." else ""
        self.by_stem.setdefault((folder, path.stem), {})[path.suffix.lower()] = (name, data)

    def reject(self, name: str, reason: str) -> None:
        self.rejected.append(Rejected(name, reason))

    def contents(self, source_name: str) -> BatchContents:
        contents = BatchContents(source_name, rejected=list(self.rejected))
        for (folder, stem), parts in sorted(self.by_stem.items()):
            for group in group_record_files(stem, parts):
                label = group.parts[0][0] if len(group.parts) == 1 else f"{folder}/{group.name}".lstrip("/")
                if group.missing is not None:
                    contents.rejected.append(Rejected(label, f"no {group.missing} beside it; a COMTRADE record "
                                                             "needs both the .cfg and the .dat (or one .cff)"))
                elif group.unknown:
                    contents.rejected.append(Rejected(label, "not a record (COMTRADE .cfg + .dat, .cff, or a "
                                                             ".npy / .csv / .txt / .tsv window)"))
                else:
                    size = sum(len(data) for _, data in group.parts)
                    if size > self.limits.max_record_bytes:
                        contents.rejected.append(Rejected(label, f"the record is {size / 2**20:.1f} MB, more than "
                                                                 f"the {self.limits.max_record_bytes / 2**20:g} MB accepted"))
                        continue
                    sender, receiver = peers_from_name(stem)
                    files = tuple((PurePosixPath(name).name, data) for name, data in group.parts)
                    contents.records.append(BatchRecord(label, files, sender, receiver))
        return contents


# -- reading a server folder ----------------------------------------------------------------------
def allowed_folder(folder: str | Path, roots: Sequence[Path]) -> Path:
    """`folder` resolved (links followed), if it is one of `roots` or inside one; else BatchError."""
    if not roots:
        raise BatchError("no server folder is allowed for batches (GEM_BATCH_ROOTS is not set)")
    text = str(folder or "").strip()
    if not text or "\x00" in text:
        raise BatchError("name a folder")
    try:
        resolved = Path(text).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise BatchError(f"{safe_filename(text)}: no such folder") from None
    for root in roots:
        try:
            real_root = Path(root).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if resolved == real_root or resolved.is_relative_to(real_root):
            if not resolved.is_dir():
                raise BatchError(f"{safe_filename(text)}: not a folder")
            return resolved
    raise BatchError(f"{safe_filename(text)}: not under a folder allowed for batches")


def read_folder(folder: str | Path, roots: Sequence[Path], limits: BatchLimits | None = None) -> BatchContents:
    """Read the records of an allowed server folder and its subfolders (links are not followed,
    special files not read), within the same limits as an archive."""
    limits = limits or BatchLimits()
    base = allowed_folder(folder, roots)
    reader = _Reader(limits)
    for directory, subfolders, names in os.walk(base, followlinks=False):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        relative_dir = Path(directory).relative_to(base)
        for file_name in sorted(names):
            reader.count(1)
            relative = (relative_dir / file_name).as_posix()
            name = reader.member_name(relative)
            if name is None:
                continue
            data = _read_regular_file(Path(directory) / file_name, name, reader)
            if data is not None:
                reader.add(name, data)
    return reader.contents(base.name or str(base))


def _read_regular_file(path: Path, name: str, reader: _Reader) -> bytes | None:
    """The bytes of a plain file, opened without following a link (O_NOFOLLOW) and checked on the
    open descriptor, so a file swapped for a link meanwhile is not read through."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        reader.reject(name, "a link, not followed" if os.path.islink(path) else
                      f"cannot be read ({exc.strerror or type(exc).__name__})")
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            reader.reject(name, "a special file, not read")
            return None
        if not reader.fits(name, info.st_size):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read(reader.room() + 1)
    finally:
        os.close(descriptor)


# -- jobs -----------------------------------------------------------------------------------------
def new_batch_id() -> str:
    return uuid.uuid4().hex


def create_batch(jobs: JobStore, contents: BatchContents, *, batch_id: str | None = None,
                 transfer_kw: float | None = None, relay_connection: str | None = None) -> str:
    """One job per record of `contents` (queued) and per rejected item (failed, with the reason),
    all under one batch id, in one transaction; the batch id. Nothing runs yet (`submit_batch`,
    `run_batch_here`). The batch's name is kept as its jobs' `options["batch"]`, the relay
    connection its records are read through (services.inference.connections) as
    `options["relay_connection"]`."""
    batch_id = batch_id or new_batch_id()
    options = {"batch": safe_filename(contents.source_name), "relay_connection": relay_connection}
    items: list[dict[str, Any]] = []
    for record in contents.records:
        items.append({"name": _shown_path(record.name),
                      "files": list(record.files), "sender": record.sender, "receiver": record.receiver,
                      "transfer_kw": transfer_kw, "content_hash": record_hash(list(record.files)), "options": options})
    for item in contents.rejected:
        items.append({"name": _shown_path(item.name), "files": None, "sender": DEFAULT_SENDER,
                      "receiver": DEFAULT_RECEIVER, "error": f"{_shown_path(item.name)}: {item.reason}",
                      "options": options})
    jobs.create_many(items, source=BATCH_SOURCE, batch_id=batch_id)
    return batch_id


def _shown_path(name: str) -> str:
    """A relative path as it may be shown: each part cleaned like an uploaded file's name."""
    return "/".join(safe_filename(part) for part in str(name).split("/") if part)[:255] or "upload"


def submit_batch(jobs: JobStore, batch_id: str, submit: Callable[[str], None]) -> int:
    """Hand every queued job of the batch to an engine (`JobEngine.submit`: Celery workers); how many."""
    count = 0
    for job_id in jobs.batch_job_ids(batch_id):
        submit(job_id)
        count += 1
    return count


def run_batch_here(batch_id: str, pipeline: RecordPipeline, *, threads: int = 2,
                   on_progress: Callable[[BatchProgress], None] | None = None,
                   progress_every_s: float = 0.5) -> BatchProgress:
    """Run the batch's queued jobs in this process with `threads` threads, each through the
    pipeline's one task (`analyse_record`), reporting progress now and then. Jobs cancelled
    meanwhile are skipped by the task itself. The final progress."""
    jobs = pipeline.jobs
    job_ids = jobs.batch_job_ids(batch_id)
    started = time.monotonic()
    tracker = ProgressTracker(jobs, batch_id, started=started)
    with ThreadPoolExecutor(max_workers=max(1, int(threads)), thread_name_prefix="gem-batch") as pool:
        futures = [pool.submit(_run_one, job_id, pipeline) for job_id in job_ids]
        last = 0.0
        keep_alive = KeepAlive(jobs, batch_id)
        for future in futures:
            future.result()
            keep_alive()
            if on_progress is not None and time.monotonic() - last >= progress_every_s:
                last = time.monotonic()
                on_progress(tracker.read())
    final = tracker.read()
    if on_progress is not None:
        on_progress(final)
    return final


class KeepAlive:
    """Called often by a batch's runner: every `every_s` it marks the batch's unfinished jobs as
    handled (`JobStore.touch_batch`), so the recovery pass, which offers jobs left untouched for
    minutes by a process that stopped, does not run a live batch's records a second time. If the
    runner dies, the touches stop and recovery takes the records over."""

    def __init__(self, jobs: JobStore, batch_id: str, every_s: float = KEEP_ALIVE_S) -> None:
        self.jobs, self.batch_id, self.every_s = jobs, batch_id, every_s
        self.last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            try:
                self.jobs.touch_batch(self.batch_id)
            except Exception:  # a database hiccup: the next touch will do
                log.warning("batch %s: keep-alive not written", self.batch_id, exc_info=True)


def _run_one(job_id: str, pipeline: RecordPipeline) -> None:
    try:
        analyse_record(job_id, pipeline)
    except Exception:  # a database outage: the job stays unfinished, recovery offers it again
        log.exception("batch job %s could not be run", job_id)


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands: job counts by state, records per second since it started, seconds left."""

    total: int
    counts: dict[str, int]
    elapsed_s: float
    rate: float | None
    eta_s: float | None

    @property
    def finished(self) -> int:
        return self.counts.get(DONE, 0) + self.counts.get(FAILED, 0) + self.counts.get(CANCELLED, 0)

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.finished >= self.total

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "counts": dict(self.counts), "finished": self.finished,
                "elapsed_s": round(self.elapsed_s, 3), "rate": self.rate, "eta_s": self.eta_s,
                "complete": self.complete}


class ProgressTracker:
    """Reads a batch's counts and derives its rate from the records finished since `started`
    (rejected ones, failed at creation, do not count towards the speed)."""

    def __init__(self, jobs: JobStore, batch_id: str, started: float | None = None) -> None:
        self.jobs = jobs
        self.batch_id = batch_id
        self.started = time.monotonic() if started is None else started
        self.initial = self._finished(jobs.counts(batch_id=batch_id))

    @staticmethod
    def _finished(counts: dict[str, int]) -> int:
        return counts.get(DONE, 0) + counts.get(FAILED, 0) + counts.get(CANCELLED, 0)

    def read(self) -> BatchProgress:
        counts = self.jobs.counts(batch_id=self.batch_id)
        total = sum(counts.values())
        elapsed = max(1e-6, time.monotonic() - self.started)
        analysed = self._finished(counts) - self.initial
        rate = analysed / elapsed if analysed > 0 else None
        left = counts.get(QUEUED, 0) + counts.get(RUNNING, 0)
        eta = left / rate if rate else None
        return BatchProgress(total, counts, elapsed, round(rate, 2) if rate else None,
                             round(eta, 1) if eta is not None else None)


# -- results --------------------------------------------------------------------------------------
def batch_rows(jobs: JobStore, batch_id: str) -> Iterator[dict[str, Any]]:
    """Every job of the batch with its analysis's main fields (None where it has none), by record name."""
    if not is_job_id(batch_id):
        return
    j, h = jobs.jobs, jobs.history.table
    columns = [j.c.id.label("job_id"), j.c.name.label("record"), j.c.state, j.c.error, j.c.analysis_id,
               j.c.sender, j.c.receiver, j.c.options, h.c.created_at, h.c.model_fingerprint, h.c.impact_summary,
               *[h.c[name] for name in _RESULT_COLUMNS]]
    query = (select(*columns).select_from(j.outerjoin(h, h.c.id == j.c.analysis_id))
             .where(j.c.batch_id == batch_id).order_by(j.c.name, j.c.id))
    jobs._ready()
    with jobs.engine.connect() as connection:
        for row in connection.execute(query).mappings():
            yield dict(row)


def batch_summary(jobs: JobStore, batch_id: str) -> dict[str, Any] | None:
    """The batch in numbers: job counts by state, analyses by category, unit (equipment), severity
    and label, and the rejected records with their reasons (the first MAX_LISTED_REJECTED). None
    for a batch that does not exist."""
    rows = list(batch_rows(jobs, batch_id))
    if not rows:
        return None
    states = Counter(row["state"] for row in rows)
    done = [row for row in rows if row["state"] == DONE and row["label"] is not None]
    rejected = [{"record": row["record"], "reason": row["error"] or "failed"}
                for row in rows if row["state"] == FAILED]
    options = rows[0].get("options") or {}
    return {
        "batch_id": batch_id,
        "name": options.get("batch"),
        "total": len(rows),
        "counts": {state: states.get(state, 0) for state in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)},
        "complete": states.get(QUEUED, 0) + states.get(RUNNING, 0) == 0,
        "by_category": _count(done, "category"),
        "by_equipment": _count(done, "equipment"),
        "by_severity": _count(done, "severity"),
        "by_label": _count(done, "label"),
        "unknown": sum(1 for row in done if row["unknown"]),
        "rejected": rejected[:MAX_LISTED_REJECTED],
        "rejected_count": len(rejected),
    }


def _count(rows: list[dict[str, Any]], column: str) -> dict[str, int]:
    counted = Counter(row[column] or "none" for row in rows)
    return dict(sorted(counted.items(), key=lambda item: (-item[1], item[0])))


def batch_results(jobs: JobStore, batch_id: str) -> list[dict[str, Any]]:
    """The table of a batch: one row per record (JSON-able), analysed or not."""
    results = []
    for row in batch_rows(jobs, batch_id):
        item = {name: row[name] for name in ("job_id", "record", "state", "error", "analysis_id", "sender",
                                             "receiver", *_RESULT_COLUMNS)}
        if item["confidence"] is not None:
            item["confidence"] = round(float(item["confidence"]), 4)
        results.append(item)
    return results


def iter_batch_csv(jobs: JobStore, batch_id: str) -> Iterator[str]:
    """The batch's results as CSV text in chunks (CSV_COLUMNS), cells made inert for spreadsheets
    as the history's export does. The rows are read before the first chunk is yielded, so a
    database error surfaces while the caller can still answer with an error."""
    rows = list(batch_rows(jobs, batch_id))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, 1):
        writer.writerow([_csv_cell(row.get(name)) for name in CSV_COLUMNS])
        if count % 1000 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text
