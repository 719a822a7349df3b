"""Every setting of the app, read once: one frozen object from GEM_* environment variables and CLI flags.

`SETTINGS` below is the one table of settings (environment variable, field, type, default, what
it does); the README's configuration table is written from it and a test keeps them equal. Nothing
else reads `os.environ` for a GEM_* variable: services receive what they need as arguments.

Frozen so that every worker and every request sees the same configuration; change it by building
a new Settings (``with_overrides``) and a new app.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

from services.alarms import AlarmError, parse_severities
from services.batch import DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_FILES, BatchLimits
from services.comtrade_ingest import MAX_RECORD_BYTES
from services.grid import Tariffs
from services.history import DatabaseTimeouts
from services.inference.connections import check_relay_connection
from services.inference.options import InferenceOptions
from services.notify import NotifyConfig, NotifyConfigError, parse_recipients

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
#: the shipped model (artifact contract, docs/contracts.md) beside the code, whatever the cwd
DEFAULT_ARTIFACTS_DIR = PACKAGE_ROOT / "artifacts"
#: where the default SQLite history lives: ./instance of the folder the app is started from
DEFAULT_INSTANCE_DIR = Path("instance")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


class Setting(NamedTuple):
    """One row of the settings table."""

    variable: str
    field: str
    kind: str  # "text", "int", "float", "bool", "path"
    default: Any
    help: str
    flag: str | None = None  # the `python -m app` flag that overrides it


#: the settings table: (variable, field, type, default, meaning). The README's table is this one.
SETTINGS: tuple[Setting, ...] = (
    Setting("GEM_HOST", "host", "text", "127.0.0.1", "interface `python -m app` and gunicorn listen on", flag="--host"),
    Setting("GEM_PORT", "port", "int", 8050, "port `python -m app` and gunicorn listen on", flag="--port"),
    Setting("GEM_DEBUG", "debug", "bool", False, "Dash debug mode (`python -m app` only)", flag="--debug"),
    Setting("GEM_ARTIFACTS_DIR", "artifacts_dir", "path", DEFAULT_ARTIFACTS_DIR,
            "model artifacts folder (the shipped `artifacts/` of the installed package by default)", flag="--artifacts"),
    Setting("GEM_INSTANCE_DIR", "instance_dir", "path", DEFAULT_INSTANCE_DIR,
            "folder of the default SQLite history (`instance/` of the working folder)", flag="--instance"),
    Setting("GEM_DATABASE_URL", "database_url", "text", None,
            "SQLAlchemy URL of the history, e.g. `postgresql+psycopg://user@host/db`; unset: "
            "`sqlite:///<instance>/history.db`", flag="--database-url"),
    Setting("GEM_DB_CONNECT_TIMEOUT_S", "db_connect_timeout_s", "float", 3.0,
            "seconds to open a history database connection (PostgreSQL: whole seconds, at least 2)"),
    Setting("GEM_DB_STATEMENT_TIMEOUT_S", "db_statement_timeout_s", "float", 5.0,
            "seconds one history operation may take, enforced by the client too (a frozen database "
            "cannot hold a request); SQLite's busy timeout"),
    Setting("GEM_DB_POOL_TIMEOUT_S", "db_pool_timeout_s", "float", 3.0,
            "seconds to wait for a free pooled database connection"),
    Setting("GEM_RETENTION_DAYS", "retention_days", "float", None,
            "`python -m app history prune`: delete analyses older than this many days (unset: keep)"),
    Setting("GEM_RETENTION_MAX_ROWS", "retention_max_rows", "int", None,
            "`python -m app history prune`: keep at most this many newest analyses, about 15 kB each "
            "(unset: no limit)"),
    Setting("GEM_MAX_BODY_BYTES", "max_body_bytes", "int", 1024 * 1024,
            "largest JSON body the API reads (`/predict`, 413 above it)"),
    Setting("GEM_MAX_UPLOAD_BYTES", "max_upload_bytes", "int", MAX_RECORD_BYTES,
            "largest upload, dashboard and `/api/predict-file` alike (files of one recording together)"),
    Setting("GEM_MAX_BATCH_BYTES", "max_batch_bytes", "int", DEFAULT_MAX_BATCH_BYTES,
            "largest batch: the archive as uploaded, and the bytes read out of it or out of a server folder "
            "once decompressed (a zip bomb stops there)"),
    Setting("GEM_MAX_BATCH_FILES", "max_batch_files", "int", DEFAULT_MAX_BATCH_FILES,
            "most files in one batch archive or server folder"),
    Setting("GEM_BATCH_ROOTS", "batch_roots", "text", None,
            "server folders a batch may be read from (and their subfolders), separated by `:`; unset: uploads only"),
    Setting("GEM_THREADS", "inference_threads", "int", None,
            "threads of one inference call (unset: the inference service's default)"),
    Setting("GEM_BACKEND", "inference_backend", "text", "onnxruntime",
            "`onnxruntime`, or `torch` to force the torch fallback"),
    Setting("GEM_CACHE_DIR", "cache_dir", "path", None,
            "where the exported ONNX graph is cached (unset: `~/.cache/grid-event-monitor`)"),
    Setting("GEM_ORT_SPINNING", "ort_spinning", "bool", False, "let ONNX Runtime threads spin between calls"),
    Setting("GEM_MAX_BATCH", "max_batch", "int", None,
            "largest batch of windows in one inference call (unset: the inference service's default)"),
    Setting("GEM_FEED_IN_TARIFF", "feed_in_tariff", "float", None, "feed-in tariff per kWh (unset: built-in)"),
    Setting("GEM_RETAIL_TARIFF", "retail_tariff", "float", None, "retail tariff per kWh (unset: built-in)"),
    Setting("GEM_P2P_SHARE", "p2p_share", "float", None,
            "where the P2P price sits between feed-in and retail, 0 to 1 (unset: built-in)"),
    Setting("GEM_CURRENCY", "currency", "text", None, "currency of the tariffs (unset: built-in)"),
    Setting("GEM_BIND", "bind", "text", None, "gunicorn: address to bind (unset: `GEM_HOST:GEM_PORT`)"),
    Setting("GEM_WORKERS", "workers", "int", 2, "gunicorn: worker processes"),
    Setting("GEM_WORKER_CLASS", "worker_class", "text", "gthread",
            "gunicorn: `gthread` (a slow client holds one thread) or `sync` (it holds a whole worker)"),
    Setting("GEM_WORKER_THREADS", "worker_threads", "int", 8,
            "gunicorn: threads per `gthread` worker (each slow client holds one, for `GEM_READ_TIMEOUT` at most)"),
    Setting("GEM_WARMUP", "warmup", "bool", True, "gunicorn: load the model and run one analysis after fork"),
    Setting("GEM_ACCESS_LOG", "access_log", "text", None, "gunicorn: access log file, `-` for stdout (unset: none)"),
    Setting("GEM_LOG_LEVEL", "log_level", "text", "info", "gunicorn: log level"),
    Setting("GEM_CONTROL_SOCKET", "control_socket", "bool", False, "gunicorn: keep its control socket"),
    Setting("GEM_READ_TIMEOUT", "read_timeout", "int", 30,
            "gunicorn: seconds a client may take to send one request (headers and body; 408 after)"),
    Setting("GEM_ALLOWED_ORIGINS", "allowed_origins", "text", None,
            "other origins whose pages may post to the API and callbacks, comma-separated, e.g. "
            "`https://portal.example.com` (unset: same origin only)"),
    Setting("GEM_FRAME_ANCESTORS", "frame_ancestors", "text", "'self'",
            "CSP frame-ancestors: who may embed the pages in a frame, e.g. `'self' https://portal.example.com`"),
    Setting("GEM_BROKER_URL", "broker_url", "text", None,
            "Redis URL of the job queue, e.g. `redis://127.0.0.1:6379/0`: records are analysed by Celery workers "
            "(`celery -A app.worker worker`); unset: by worker threads in the web process"),
    Setting("GEM_JOB_QUEUE", "job_queue", "text", "gem-records",
            "Celery queue of the record jobs (also the prefix of its Redis keys)"),
    Setting("GEM_JOB_THREADS", "job_threads", "int", 2, "worker threads per web process without a broker"),
    Setting("GEM_WATCH_DIR", "watch_dir", "path", None,
            "folder watched for records (COMTRADE `.cfg`+`.dat`, `.cff`, `.npy`, CSV); unset: none",
            flag="--watch-dir"),
    Setting("GEM_WATCH_POLL_S", "watch_poll_s", "float", 0.5, "seconds between two scans of the watched folder"),
    Setting("GEM_WATCH_STABLE_S", "watch_stable_s", "float", 0.5,
            "seconds a record's files must stay unchanged before it is read"),
    Setting("GEM_WATCH_PAIR_TIMEOUT_S", "watch_pair_timeout_s", "float", 300.0,
            "seconds a `.cfg` waits for its `.dat` (or the reverse) before it is rejected"),
    Setting("GEM_WATCH_DELETE", "watch_delete", "bool", False,
            "delete a record's files from the watched folder once it is analysed or rejected"),
    Setting("GEM_WATCH_RELAY_CONNECTION", "watch_relay_connection", "text", None,
            "how the relay of the watched folder's records compares the currents (`relay_connection`: "
            "faulted_windings, zero_sequence_removed, delta_tied, yd_ia_minus_ib, yd_ia_minus_ic); unset: not known"),
    Setting("GEM_ALARM_SEVERITIES", "alarm_severities", "text", "critical,major",
            "severities of live events (watched folder, `/api/records`) that raise an alarm, comma-separated; "
            "`none`: no alarms"),
    Setting("GEM_WEBHOOK_URL", "webhook_url", "text", None,
            "notify each alarm by a JSON POST to this URL (unset: no webhook)"),
    Setting("GEM_SMTP_HOST", "smtp_host", "text", None, "notify each alarm by e-mail through this SMTP server (unset: no e-mail)"),
    Setting("GEM_SMTP_PORT", "smtp_port", "int", 25, "port of the SMTP server"),
    Setting("GEM_SMTP_FROM", "smtp_from", "text", None, "sender address of alarm e-mails (unset: `grid-event-monitor@localhost`)"),
    Setting("GEM_SMTP_TO", "smtp_to", "text", None, "recipients of alarm e-mails, comma-separated"),
    Setting("GEM_SMTP_USER", "smtp_user", "text", None, "SMTP login (unset: none)"),
    Setting("GEM_SMTP_PASSWORD", "smtp_password", "text", None, "SMTP password"),
    Setting("GEM_SMTP_STARTTLS", "smtp_starttls", "bool", False, "STARTTLS before sending"),
    Setting("GEM_NOTIFY_RETRIES", "notify_retries", "int", 5,
            "attempts per notification (webhook or e-mail) before it is recorded as failed"),
    Setting("GEM_NOTIFY_BACKOFF_S", "notify_backoff_s", "float", 2.0,
            "seconds before a notification's second attempt, doubled at each further one (at most 300)"),
    Setting("GEM_NOTIFY_TIMEOUT_S", "notify_timeout_s", "float", 10.0, "seconds one notification attempt may take"),
    Setting("GEM_PUBLIC_URL", "public_url", "text", None,
            "the dashboard's public base URL, e.g. `https://grid.example.com/grid`, for the links in notifications"),
    Setting("GEM_AUTH", "auth", "text", None,
            "who may use the app: `login` (accounts, `python -m app users ...`), `off` (open to anyone who "
            "reaches the port); unset: `python -m app` on a loopback bind lets this machine's own browser in "
            "without login, every other bind and gunicorn require login",
            flag="--auth"),
    Setting("GEM_SECRET_KEY", "secret_key", "text", None,
            "key signing the session cookies, the same for every worker (unset: generated once into "
            "`<instance>/secret_key`, mode 0600)"),
    Setting("GEM_SECURE_COOKIES", "secure_cookies", "bool", False,
            "mark the session cookies `Secure` (set it when users reach the app over HTTPS)"),
    Setting("GEM_SESSION_HOURS", "session_hours", "float", 8.0, "hours a login lasts"),
)
#: environment variable -> Settings field
ENV_VARS: dict[str, str] = {setting.variable: setting.field for setting in SETTINGS}
_BY_FIELD: dict[str, Setting] = {setting.field: setting for setting in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Where the app listens, where the model and the history live, the limits, inference, tariffs
    and gunicorn; every field is a row of SETTINGS (defaults there)."""

    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False
    artifacts_dir: Path = DEFAULT_ARTIFACTS_DIR
    instance_dir: Path = DEFAULT_INSTANCE_DIR
    database_url: str | None = None
    db_connect_timeout_s: float = 3.0
    db_statement_timeout_s: float = 5.0
    db_pool_timeout_s: float = 3.0
    retention_days: float | None = None
    retention_max_rows: int | None = None
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = MAX_RECORD_BYTES
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES
    batch_roots: str | None = None
    inference_threads: int | None = None
    inference_backend: str = "onnxruntime"
    cache_dir: Path | None = None
    ort_spinning: bool = False
    max_batch: int | None = None
    feed_in_tariff: float | None = None
    retail_tariff: float | None = None
    p2p_share: float | None = None
    currency: str | None = None
    bind: str | None = None
    workers: int = 2
    worker_class: str = "gthread"
    worker_threads: int = 8
    warmup: bool = True
    access_log: str | None = None
    log_level: str = "info"
    control_socket: bool = False
    read_timeout: int = 30
    allowed_origins: str | None = None
    frame_ancestors: str = "'self'"
    broker_url: str | None = None
    job_queue: str = "gem-records"
    job_threads: int = 2
    watch_dir: Path | None = None
    watch_poll_s: float = 0.5
    watch_stable_s: float = 0.5
    watch_pair_timeout_s: float = 300.0
    watch_delete: bool = False
    watch_relay_connection: str | None = None
    alarm_severities: str = "critical,major"
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    notify_retries: int = 5
    notify_backoff_s: float = 2.0
    notify_timeout_s: float = 10.0
    public_url: str | None = None
    auth: str | None = None
    secret_key: str | None = None
    secure_cookies: bool = False
    session_hours: float = 8.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "artifacts_dir", Path(self.artifacts_dir).expanduser().resolve())
        object.__setattr__(self, "instance_dir", Path(self.instance_dir).expanduser().resolve())
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if not 0 < int(self.port) < 65536:
            raise SettingsError(f"port must be between 1 and 65535, got {self.port}")
        for name in ("max_body_bytes", "max_upload_bytes", "max_batch_bytes", "max_batch_files", "workers", "worker_threads", "read_timeout", "job_threads"):
            if int(getattr(self, name)) <= 0:
                raise SettingsError(f"{name} ({_BY_FIELD[name].variable}) must be positive")
        try:
            self.database_timeouts()
        except ValueError:
            raise SettingsError("GEM_DB_CONNECT_TIMEOUT_S, GEM_DB_STATEMENT_TIMEOUT_S and GEM_DB_POOL_TIMEOUT_S "
                                "must be positive numbers of seconds") from None
        if self.retention_days is not None and not 0 <= float(self.retention_days) < 1e6:
            raise SettingsError("GEM_RETENTION_DAYS must be a number of days, 0 or more")
        if self.retention_max_rows is not None and int(self.retention_max_rows) < 0:
            raise SettingsError("GEM_RETENTION_MAX_ROWS must be 0 or more")
        for name in ("inference_threads", "max_batch"):
            if getattr(self, name) is not None and int(getattr(self, name)) <= 0:
                raise SettingsError(f"{name} ({_BY_FIELD[name].variable}) must be positive")
        try:
            object.__setattr__(self, "watch_relay_connection", check_relay_connection(self.watch_relay_connection))
        except ValueError as exc:
            raise SettingsError(f"GEM_WATCH_RELAY_CONNECTION: {exc}") from None
        if self.inference_backend not in ("onnxruntime", "torch"):
            raise SettingsError(f"GEM_BACKEND must be onnxruntime or torch, got {self.inference_backend!r}")
        if self.worker_class not in ("sync", "gthread"):
            raise SettingsError(f"GEM_WORKER_CLASS must be sync or gthread, got {self.worker_class!r}")
        if self.auth is not None and self.auth not in ("login", "off"):
            raise SettingsError(f"GEM_AUTH must be login or off (or unset), got {self.auth!r}")
        if not 0 < self.session_hours <= 24 * 30:
            raise SettingsError("GEM_SESSION_HOURS must be above 0 and at most 720")
        if not re.fullmatch(r"[A-Za-z0-9'*:/.\[\] -]+", self.frame_ancestors or ""):
            raise SettingsError("GEM_FRAME_ANCESTORS must be CSP sources such as 'self' https://portal.example.com, "
                                f"got {self.frame_ancestors!r}")
        if self.database_url is not None and not self.database_url.strip():
            object.__setattr__(self, "database_url", None)
        if self.broker_url is not None and not self.broker_url.strip():
            object.__setattr__(self, "broker_url", None)
        if self.watch_dir is not None:
            object.__setattr__(self, "watch_dir", Path(self.watch_dir).expanduser().resolve())
        for name in ("watch_poll_s", "watch_stable_s", "watch_pair_timeout_s"):
            if not float(getattr(self, name)) >= 0:
                raise SettingsError(f"{name} ({_BY_FIELD[name].variable}) must be 0 or more")
        try:
            parse_severities(self.alarm_severities)
        except AlarmError as exc:
            raise SettingsError(f"GEM_ALARM_SEVERITIES: {exc}") from None
        for name in ("webhook_url", "smtp_host", "smtp_from", "smtp_to", "smtp_user", "smtp_password", "public_url"):
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                object.__setattr__(self, name, None)
        try:
            self.notify_config()
        except NotifyConfigError as exc:
            raise SettingsError(f"notification settings (GEM_WEBHOOK_URL, GEM_SMTP_HOST, GEM_SMTP_TO...): {exc}") from None
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", self.job_queue or ""):
            raise SettingsError(f"GEM_JOB_QUEUE must be letters, digits, '.', '_' or '-', got {self.job_queue!r}")
        try:
            self.tariffs()
        except ValueError as exc:
            raise SettingsError(f"GEM_FEED_IN_TARIFF, GEM_RETAIL_TARIFF, GEM_P2P_SHARE: {exc}") from None

    def database_timeouts(self) -> DatabaseTimeouts:
        """How long a request may wait on the history database (the store reads no environment)."""
        return DatabaseTimeouts(connect_s=self.db_connect_timeout_s, statement_s=self.db_statement_timeout_s,
                                pool_s=self.db_pool_timeout_s)

    def notify_config(self) -> NotifyConfig:
        """Where alarm notifications go and how hard to try (services.notify reads no environment)."""
        return NotifyConfig(webhook_url=self.webhook_url, smtp_host=self.smtp_host, smtp_port=self.smtp_port,
                            smtp_from=self.smtp_from, smtp_to=parse_recipients(self.smtp_to),
                            smtp_user=self.smtp_user, smtp_password=self.smtp_password,
                            smtp_starttls=self.smtp_starttls, retries=self.notify_retries,
                            backoff_s=self.notify_backoff_s, timeout_s=self.notify_timeout_s,
                            public_url=self.public_url)

    def batch_root_paths(self) -> tuple[Path, ...]:
        """The folders batches may be read from (GEM_BATCH_ROOTS, `:`-separated), resolved."""
        if not self.batch_roots:
            return ()
        return tuple(Path(part).expanduser().resolve() for part in self.batch_roots.split(os.pathsep) if part.strip())

    def batch_limits(self) -> BatchLimits:
        """How much one batch may hold (services.batch reads no environment)."""
        return BatchLimits(max_bytes=self.max_batch_bytes, max_files=self.max_batch_files,
                           max_record_bytes=self.max_upload_bytes)

    def inference_options(self) -> InferenceOptions:
        """How the inference service runs (it reads no environment itself)."""
        return InferenceOptions(threads=self.inference_threads, backend=self.inference_backend,
                                cache_dir=self.cache_dir, max_batch=self.max_batch, ort_spinning=self.ort_spinning)

    def tariffs(self) -> Tariffs:
        """The P2P tariffs: the built-in ones, with those set here in their place."""
        given = {"feed_in_per_kwh": self.feed_in_tariff, "retail_per_kwh": self.retail_tariff,
                 "p2p_share": self.p2p_share, "currency": self.currency}
        return replace(Tariffs(), **{name: value for name, value in given.items() if value is not None})

    @property
    def resolved_database_url(self) -> str:
        """The database URL actually used: the configured one or the instance SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_dir / 'history.db'}"

    @property
    def bind_address(self) -> str:
        """gunicorn's bind: GEM_BIND, else host:port."""
        return self.bind or f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from GEM_* environment variables; keyword overrides (e.g. CLI flags) win."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.variable)
            if raw is None or raw.strip() == "":
                continue
            values[setting.field] = _parse(setting, raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})


def _number(kind: type) -> Callable[[Setting, str], object]:
    def parse(setting: Setting, raw: str) -> object:
        try:
            return kind(raw.strip())
        except ValueError:
            word = "an integer" if kind is int else "a number"
            raise SettingsError(f"{setting.variable} must be {word}, got {raw!r}") from None
    return parse


def _bool(setting: Setting, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{setting.variable} must be true or false, got {raw!r}")


_PARSERS: dict[str, Callable[[Setting, str], object]] = {
    "text": lambda _setting, raw: raw.strip(),
    "int": _number(int),
    "float": _number(float),
    "bool": _bool,
    "path": lambda _setting, raw: Path(raw.strip()),
}


def _parse(setting: Setting, raw: str) -> object:
    return _PARSERS[setting.kind](setting, raw)


def markdown_table() -> str:
    """The README's configuration table, from SETTINGS."""
    rows = ["| Variable | Flag | Default | Meaning |", "| --- | --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.default
        if isinstance(default, Path):
            default = "`artifacts/`" if default == DEFAULT_ARTIFACTS_DIR else f"`{default}/`"
        elif isinstance(default, bool):
            default = "`1`" if default else "`0`"
        elif default is None:
            default = "unset"
        else:
            default = f"`{default}`"
        flag = f"`{setting.flag}`" if setting.flag else ""
        rows.append(f"| `{setting.variable}` | {flag} | {default} | {setting.help} |")
    return "\n".join(rows)


def _check_table() -> None:
    """Every Settings field has a row, with the same default (import-time guard)."""
    names = [item.name for item in fields(Settings)]
    if names != [setting.field for setting in SETTINGS]:
        raise RuntimeError("Settings fields and the SETTINGS table differ")


_check_table()
