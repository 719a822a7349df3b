"""Notifications of alarms (issue 13 item 4): a webhook (JSON POST) and e-mail (SMTP) per alarm.

Why it looks like this:

- delivery never blocks the analysis: `AlarmStore` calls `Notifier.alarm_raised` only after the
  alarm's transaction committed, and that only writes one pending row per channel and hands
  `(alarm_id, channel)` to an engine: a small pool of threads in the web process
  (`ThreadDelivery`), or a Celery task when a broker is configured (`services.jobs.celery_app`);
- a delivery is a row of `<prefix>notifications` (history's engine and table prefix, like the jobs)
  with a unique (alarm, channel) key, so raising, enqueueing or redelivering twice sends once;
  a sender claims the row with a lease before sending, so two processes never send it together;
- a failed attempt is retried with exponential back-off (`backoff_s`, doubling, capped) until
  `retries` attempts were made, then the row says `failed` with the last error; `sent_at` says
  when it went. The webhook carries an `Idempotency-Key` and the e-mail a fixed Message-ID, so a
  receiver can drop the rare duplicate of a delivery whose answer was lost.

No Dash and no environment here: `app.settings.Settings.notify_config()` builds `NotifyConfig`.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from services.alarms import AlarmStore
from services.history.schema import UTCDateTime, create_tables, utc_now

log = logging.getLogger(__name__)

WEBHOOK, EMAIL = "webhook", "email"
CHANNELS: tuple[str, ...] = (WEBHOOK, EMAIL)
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
STATES: tuple[str, ...] = (PENDING, SENDING, SENT, FAILED)
MAX_BACKOFF_S = 300.0
MAX_ERROR_CHARS = 500
#: the Celery task that delivers one (alarm, channel) on a worker
DELIVER_TASK_NAME = "gem.deliver_notification"


class NotifyConfigError(ValueError):
    """A notification setting that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class NotifyConfig:
    """Where alarms go and how hard to try. A channel is on when its destination is set."""

    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    #: attempts in all (the first one included) before a delivery is recorded as failed
    retries: int = 5
    #: seconds before the second attempt; doubled at each further one, capped at MAX_BACKOFF_S
    backoff_s: float = 2.0
    timeout_s: float = 10.0
    #: the dashboard's public base URL, for the link in a notification (None: no link)
    public_url: str | None = None

    def __post_init__(self) -> None:
        if self.webhook_url is not None:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise NotifyConfigError("the webhook URL must be an http:// or https:// URL with a host")
        if self.smtp_host:
            if not self.smtp_to:
                raise NotifyConfigError("e-mail notifications need at least one recipient")
            for address in (*self.smtp_to, self.smtp_from or "gem@localhost"):
                if "@" not in parseaddr(address)[1]:
                    raise NotifyConfigError(f"{address!r} is not an e-mail address")
        if not 0 < int(self.smtp_port) < 65536:
            raise NotifyConfigError("the SMTP port must be between 1 and 65535")
        if int(self.retries) < 1:
            raise NotifyConfigError("retries must be 1 or more (attempts in all)")
        if not float(self.backoff_s) >= 0 or not float(self.timeout_s) > 0:
            raise NotifyConfigError("back-off must be 0 or more seconds and the timeout more than 0")

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels configured, in CHANNELS order."""
        wanted = {WEBHOOK: bool(self.webhook_url), EMAIL: bool(self.smtp_host and self.smtp_to)}
        return tuple(channel for channel in CHANNELS if wanted[channel])

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt: backoff_s * 2**(attempts-1), capped."""
        return min(MAX_BACKOFF_S, float(self.backoff_s) * 2 ** max(0, attempts - 1))


def parse_recipients(value: str | None) -> tuple[str, ...]:
    """'a@x, b@y' -> ('a@x', 'b@y')."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def build_table(metadata: MetaData, prefix: str = "") -> Table:
    return Table(
        f"{prefix}notifications",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("alarm_id", BigInteger, nullable=False),
        Column("channel", String(16), nullable=False),
        #: the URL's host or the recipients, to say where it went (never credentials)
        Column("target", Text),
        Column("state", String(12), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("next_attempt_at", UTCDateTime()),
        #: while SENDING: when the sender's claim lapses (it died) and another may try
        Column("lease_until", UTCDateTime()),
        Column("sent_at", UTCDateTime()),
        UniqueConstraint("alarm_id", "channel", name=f"uq_{prefix}notifications_alarm_channel"),
    )


class DeliveryError(RuntimeError):
    """One attempt failed; the message is what the record keeps."""


class Notifier:
    """Records and delivers the notifications of alarms, on the alarm store's database.

    `submit(alarm_id, channel)` hands a delivery to the engine; without one, `ThreadDelivery`
    (threads of this process) is used. `senders` replaces the real webhook/e-mail senders (tests).
    """

    def __init__(self, alarms: AlarmStore, config: NotifyConfig,
                 submit: Callable[[int, str], None] | None = None,
                 senders: Mapping[str, Callable[[dict[str, Any], NotifyConfig], None]] | None = None) -> None:
        self.alarms = alarms
        self.config = config
        self.engine = alarms.engine
        self.metadata = MetaData()
        self.table = build_table(self.metadata, alarms.table.name.removesuffix("alarms"))
        self.senders = dict(senders or {WEBHOOK: send_webhook, EMAIL: send_email})
        self._pool: ThreadDelivery | None = None
        self.submit = submit or self._threads().submit
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        try:
            self._ready()
        except OperationalError as exc:
            log.error("notification table not created at start (%s); will retry on first use", type(exc).__name__)

    def _threads(self) -> ThreadDelivery:
        if self._pool is None:
            self._pool = ThreadDelivery(self)
        return self._pool

    def _ready(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                create_tables(self.engine, self.metadata, attempts=6, what="notification schema")
                self._schema_ready = True

    def drop(self) -> None:
        self.metadata.drop_all(self.engine, checkfirst=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    # -- enqueueing -------------------------------------------------------------------------------
    def alarm_raised(self, alarm_id: int) -> list[str]:
        """After the alarm's transaction committed: a pending row per configured channel (once:
        the unique key makes a second call a no-op), each handed to the engine. The channels
        handed; never raises (the analysis path must not fail because of a notification)."""
        handed = []
        for channel in self.config.channels:
            try:
                if self._create(int(alarm_id), channel):
                    self.submit(int(alarm_id), channel)
                    handed.append(channel)
            except Exception as exc:  # a database or broker outage: redeliver_stale picks it up later
                log.error("notification %s of alarm %s not queued: %s: %s", channel, alarm_id, type(exc).__name__, exc)
        return handed

    def _create(self, alarm_id: int, channel: str) -> bool:
        self._ready()
        now = utc_now()
        row = {"alarm_id": alarm_id, "channel": channel, "target": self._target(channel), "state": PENDING,
               "attempts": 0, "created_at": now, "updated_at": now, "next_attempt_at": now}
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(self.table), row)
        except IntegrityError:
            return False
        return True

    def _target(self, channel: str) -> str:
        if channel == WEBHOOK:
            parts = urlsplit(self.config.webhook_url or "")
            return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"
        return ", ".join(self.config.smtp_to)

    # -- delivering -------------------------------------------------------------------------------
    def attempt(self, alarm_id: int, channel: str) -> float | None:
        """One attempt at a pending delivery: the seconds to wait before the next attempt, or None
        when there is nothing more to do (sent, failed for good, or another sender holds it)."""
        attempts = self._claim(alarm_id, channel)
        if attempts is None:
            return None
        alarm = self.alarms.get(alarm_id)
        try:
            if alarm is None:
                raise DeliveryError(f"alarm {alarm_id} does not exist")
            sender = self.senders.get(channel)
            if sender is None or channel not in self.config.channels:
                raise DeliveryError(f"channel {channel} is not configured")
            sender(alarm_payload(alarm, self.config.public_url), self.config)
        except Exception as exc:
            message = _error_text(exc)
            give_up = attempts >= int(self.config.retries) or alarm is None
            delay = None if give_up else self.config.delay_after(attempts)
            self._settle(alarm_id, channel, FAILED if give_up else PENDING, error=message, delay=delay)
            log.warning("notification %s of alarm %s, attempt %d: %s%s", channel, alarm_id, attempts, message,
                        "" if delay is None else f"; again in {delay:g} s")
            return delay
        self._settle(alarm_id, channel, SENT)
        return None

    def deliver(self, alarm_id: int, channel: str, stop: threading.Event | None = None) -> str | None:
        """Attempt until sent or given up, sleeping the back-off in between (a delivery thread);
        the final state."""
        stop = stop or threading.Event()
        while True:
            delay = self.attempt(alarm_id, channel)
            if delay is None or stop.wait(delay):
                break
        found = self.get(alarm_id, channel)
        return found["state"] if found else None

    def _claim(self, alarm_id: int, channel: str) -> int | None:
        """Mark the delivery SENDING under a lease and count the attempt; its attempt number, or None."""
        self._ready()
        now = utc_now()
        table = self.table
        lease = now + timedelta(seconds=float(self.config.timeout_s) * 3 + 30)
        claimable = or_(table.c.state == PENDING, and_(table.c.state == SENDING, table.c.lease_until < now))
        with self.engine.begin() as connection:
            row = connection.execute(
                update(table).where(table.c.alarm_id == alarm_id, table.c.channel == channel, claimable)
                .values(state=SENDING, lease_until=lease, attempts=table.c.attempts + 1, updated_at=now)
                .returning(table.c.attempts)
            ).first()
        return int(row[0]) if row is not None else None

    def _settle(self, alarm_id: int, channel: str, state: str, *, error: str | None = None,
                delay: float | None = None) -> None:
        now = utc_now()
        values: dict[str, Any] = {"state": state, "updated_at": now, "lease_until": None}
        if state == SENT:
            values.update(sent_at=now, next_attempt_at=None)
        else:
            values.update(last_error=error, next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None)
        with self.engine.begin() as connection:
            connection.execute(update(self.table).where(self.table.c.alarm_id == alarm_id,
                                                        self.table.c.channel == channel).values(**values))

    def redeliver_stale(self, limit: int = 200) -> list[tuple[int, str]]:
        """Hand the engine again the deliveries a stopped process left: pending ones past their next
        attempt by a minute, and SENDING ones whose lease lapsed. What was handed."""
        self._ready()
        now = utc_now()
        table = self.table
        late = now - timedelta(seconds=60)
        query = (select(table.c.alarm_id, table.c.channel)
                 .where(or_(and_(table.c.state == PENDING, table.c.next_attempt_at < late),
                            and_(table.c.state == SENDING, table.c.lease_until < now)))
                 .order_by(table.c.id).limit(limit))
        with self.engine.connect() as connection:
            stale = [(int(alarm_id), str(channel)) for alarm_id, channel in connection.execute(query)]
        for alarm_id, channel in stale:
            self.submit(alarm_id, channel)
        return stale

    # -- reading ----------------------------------------------------------------------------------
    def get(self, alarm_id: int, channel: str) -> dict[str, Any] | None:
        self._ready()
        query = select(self.table).where(self.table.c.alarm_id == int(alarm_id), self.table.c.channel == channel)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _public(dict(row)) if row is not None else None

    def for_alarm(self, alarm_id: int) -> list[dict[str, Any]]:
        """What was sent (or tried) for one alarm, one row per channel."""
        self._ready()
        query = select(self.table).where(self.table.c.alarm_id == int(alarm_id)).order_by(self.table.c.channel)
        with self.engine.connect() as connection:
            return [_public(dict(row)) for row in connection.execute(query).mappings()]


class ThreadDelivery:
    """Deliveries on a few daemon threads of this process (the embedded default): each thread runs
    one delivery to its end, sleeping its back-off, so the job threads that analyse records never
    wait for a webhook or a mail server, and a stopping process is not held by a back-off (what it
    leaves pending, `Notifier.redeliver_stale` offers again)."""

    def __init__(self, notifier: Notifier, threads: int = 2) -> None:
        self.notifier = notifier
        self.threads = max(1, int(threads))
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        self._started = threading.Lock()
        self._workers: list[threading.Thread] = []

    def submit(self, alarm_id: int, channel: str) -> None:
        with self._started:
            if not self._workers:
                self._workers = [threading.Thread(target=self._work, name=f"gem-notify-{index}", daemon=True)
                                 for index in range(self.threads)]
                for worker in self._workers:
                    worker.start()
        self._queue.put((int(alarm_id), channel))

    def _work(self) -> None:
        while not self._stop.is_set():
            alarm_id, channel = self._queue.get()
            if self._stop.is_set():
                break
            try:
                self.notifier.deliver(alarm_id, channel, self._stop)
            except Exception:  # a database outage: the row stays pending, redeliver_stale offers it again
                log.exception("notification %s of alarm %s could not be delivered", channel, alarm_id)

    def close(self) -> None:
        self._stop.set()
        for _ in self._workers:
            self._queue.put((0, ""))  # wake each worker so it sees the stop
        for worker in self._workers:
            worker.join(timeout=5)


# -- the message ------------------------------------------------------------------------------------
PAYLOAD_FIELDS: tuple[str, ...] = (
    "severity", "headline", "label", "category", "equipment", "kind", "confidence", "sender", "receiver",
    "transfer_kw", "transfer_status", "impact_summary", "source", "sample_name", "created_at",
)


def alarm_payload(alarm: Mapping[str, Any], public_url: str | None = None) -> dict[str, Any]:
    """What a webhook receives (and an e-mail says): the alarm in plain fields, with its link."""
    payload: dict[str, Any] = {"type": "grid_event_alarm", "alarm_id": int(alarm["id"]),
                               "analysis_id": int(alarm["analysis_id"])}
    payload.update({name: alarm.get(name) for name in PAYLOAD_FIELDS})
    payload["link"] = f"{public_url.rstrip('/')}/analysis/{int(alarm['analysis_id'])}" if public_url else None
    return payload


def send_webhook(payload: dict[str, Any], config: NotifyConfig) -> None:
    """POST the payload as JSON; any answer but 2xx (redirects included) is a failed attempt."""
    assert config.webhook_url
    request = urllib.request.Request(
        config.webhook_url, data=orjson.dumps(payload), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "grid-event-monitor",
                 "Idempotency-Key": f"gem-alarm-{payload['alarm_id']}-webhook"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=float(config.timeout_s)) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"webhook unreachable: {_reason(exc.reason)}") from None
    except TimeoutError:
        raise DeliveryError(f"webhook did not answer within {config.timeout_s:g} s") from None
    except OSError as exc:  # the connection dropped while the answer was read
        raise DeliveryError(f"webhook connection failed: {_reason(exc)}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered HTTP {status}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a moved webhook is a configuration error, not a hop
        return None


def email_message(payload: Mapping[str, Any], config: NotifyConfig) -> EmailMessage:
    """The alarm as a plain-text e-mail with a fixed Message-ID per alarm (duplicates are recognisable)."""
    message = EmailMessage()
    severity = str(payload.get("severity") or "").upper()
    message["Subject"] = f"[Grid Event Monitor] {severity}: {payload.get('headline') or payload.get('label')}"
    message["From"] = config.smtp_from or "grid-event-monitor@localhost"
    message["To"] = ", ".join(config.smtp_to)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<gem-alarm-{payload['alarm_id']}@grid-event-monitor>"
    lines = [f"Alarm #{payload['alarm_id']} ({severity}) raised at {payload.get('created_at')} UTC", ""]
    for name, title in (("headline", "Event"), ("label", "Label"), ("confidence", "Confidence"),
                        ("equipment", "Equipment"), ("sender", "Sender"), ("receiver", "Receiver"),
                        ("transfer_status", "Transfer"), ("impact_summary", "Impact"), ("sample_name", "Record"),
                        ("link", "Analysis")):
        value = payload.get(name)
        if value is None or value == "":
            continue
        if name == "confidence":
            value = f"{float(value):.1%}"
        lines.append(f"{title}: {value}")
    if not payload.get("link"):
        lines.append(f"Analysis: /analysis/{payload['analysis_id']} on the dashboard")
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(payload: dict[str, Any], config: NotifyConfig) -> None:
    """Send the alarm's e-mail through the configured SMTP server (STARTTLS and login if set)."""
    assert config.smtp_host
    message = email_message(payload, config)
    try:
        with smtplib.SMTP(config.smtp_host, int(config.smtp_port), timeout=float(config.timeout_s)) as smtp:
            if config.smtp_starttls:
                smtp.starttls()
            if config.smtp_user:
                smtp.login(config.smtp_user, config.smtp_password or "")
            smtp.send_message(message)
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP server refused: {_reason(exc)}") from None
    except OSError as exc:
        raise DeliveryError(f"SMTP server unreachable: {_reason(exc)}") from None


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _error_text(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def _public(item: dict[str, Any]) -> dict[str, Any]:
    for key in ("created_at", "updated_at", "next_attempt_at", "lease_until", "sent_at"):
        if item.get(key) is not None:
            item[key] = item[key].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return item
