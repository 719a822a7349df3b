"""Notifications of alarms (issue 13 item 4): webhook and e-mail per alarm, sent once per (alarm,
channel), retried with back-off, recorded; against a local HTTP receiver and a local SMTP server
that the tests start (threads of this process, on free ports of 127.0.0.1)."""

from __future__ import annotations

import io
import json
import socket
import socketserver
import threading
import time
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.jobs import attach_notifier
from app.settings import Settings, SettingsError
from services.alarms import AlarmStore
from services.history import HistoryStore
from services.history.schema import utc_now
from services.jobs import JobStore
from services.notify import (
    EMAIL,
    FAILED,
    SENDING,
    SENT,
    WEBHOOK,
    Notifier,
    NotifyConfig,
    NotifyConfigError,
    alarm_payload,
)
from tests.test_alarms import history_row


# -- local receivers ----------------------------------------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST; the first `failures` answer 503; while
    `hold` is clear, requests wait (a slow webhook)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[dict] = []
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"at": time.monotonic(), "headers": dict(self.headers),
                                          "body": json.loads(body)})
                receiver.arrived.set()
                receiver.hold.wait(10)
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """A minimal SMTP server (RFC 5321's commands that smtplib sends) keeping each message."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        smtp = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 localhost test SMTP")
                sender, recipients = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    command = line.decode().strip()
                    verb = command[:4].upper()
                    if verb in ("HELO", "EHLO"):
                        self.reply("250 localhost")
                    elif verb == "MAIL":
                        sender = command.split(":", 1)[1].strip()
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip())
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        smtp.messages.append({"from": sender, "to": recipients,
                                              "message": message_from_bytes(data)})
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture()
def smtp():
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture()
def history(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    yield store
    store.dispose()


def pipeline(history: HistoryStore, config: NotifyConfig) -> tuple[JobStore, Notifier]:
    alarms = AlarmStore(history)
    notifier = Notifier(alarms, config)
    alarms.notifier = notifier
    return JobStore(history, alarms), notifier


def finish(jobs: JobStore, severity: str = "critical") -> int:
    """A live job finished with a history row of `severity`; its alarm's id (or None)."""
    job_id = jobs.create(source="watch", name="r.cfg", files=[("r.npy", b"x")], sender="prosumer-a",
                         receiver="ev-hub")
    jobs.claim(job_id)
    analysis_id = jobs.finish(job_id, jobs.history._row(history_row(severity)))
    found = [alarm for alarm in jobs.alarms.recent() if alarm["analysis_id"] == analysis_id]
    return found[0]["id"] if found else None


def wait_for(notifier: Notifier, alarm_id: int, channel: str, states=(SENT, FAILED), timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = notifier.get(alarm_id, channel)
        if row is not None and row["state"] in states:
            return row
        time.sleep(0.02)
    raise AssertionError(f"{channel} of alarm {alarm_id} still {notifier.get(alarm_id, channel)}")


# -- tests --------------------------------------------------------------------------------------------
def test_nfy001_settings_choose_the_channels_and_bad_ones_are_refused():
    settings = Settings.from_env({"GEM_WEBHOOK_URL": "https://hooks.example.com/x", "GEM_SMTP_HOST": "mail",
                                  "GEM_SMTP_TO": "ops@example.com, lead@example.com", "GEM_NOTIFY_RETRIES": "3",
                                  "GEM_NOTIFY_BACKOFF_S": "1.5"})
    config = settings.notify_config()
    assert config.channels == (WEBHOOK, EMAIL)
    assert config.smtp_to == ("ops@example.com", "lead@example.com") and config.retries == 3
    assert [config.delay_after(n) for n in (1, 2, 3)] == [1.5, 3.0, 6.0]
    assert NotifyConfig(backoff_s=100).delay_after(10) == 300.0  # capped
    assert Settings().notify_config().channels == ()
    for env in ({"GEM_WEBHOOK_URL": "file:///etc/passwd"}, {"GEM_SMTP_HOST": "mail"},
                {"GEM_SMTP_HOST": "mail", "GEM_SMTP_TO": "not-an-address"}, {"GEM_NOTIFY_RETRIES": "0"}):
        with pytest.raises(SettingsError, match="notification settings"):
            Settings.from_env(env)
    with pytest.raises(NotifyConfigError):
        NotifyConfig(webhook_url="http://", retries=1)


def test_nfy002_an_alarm_is_posted_and_mailed_once_and_recorded(history, receiver, smtp):
    config = NotifyConfig(webhook_url=receiver.url, smtp_host="127.0.0.1", smtp_port=smtp.port,
                          smtp_from="gem@example.com", smtp_to=("ops@example.com",), backoff_s=0.05,
                          public_url="https://grid.example.com/grid/")
    jobs, notifier = pipeline(history, config)
    assert finish(jobs, "minor") is None  # not alarmed on: nothing sent
    alarm_id = finish(jobs, "critical")
    hook = wait_for(notifier, alarm_id, WEBHOOK)
    mail = wait_for(notifier, alarm_id, EMAIL)
    assert (hook["state"], hook["attempts"], hook["last_error"]) == (SENT, 1, None) and hook["sent_at"]
    assert hook["target"] == receiver.url.split("/hook")[0]  # the host, never the token
    assert (mail["state"], mail["attempts"], mail["target"]) == (SENT, 1, "ops@example.com")

    [request] = receiver.requests
    alarm = jobs.alarms.get(alarm_id)
    assert request["body"] == alarm_payload(alarm, config.public_url)
    assert request["body"]["severity"] == "critical" and request["body"]["sender"] == "prosumer-a"
    assert request["body"]["link"] == f"https://grid.example.com/grid/analysis/{alarm['analysis_id']}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Idempotency-Key"] == f"gem-alarm-{alarm_id}-webhook"

    [mail_in] = smtp.messages
    assert mail_in["to"] == ["<ops@example.com>"] and mail_in["from"] == "<gem@example.com>"
    message = mail_in["message"]
    assert message["Subject"] == "[Grid Event Monitor] CRITICAL: ABG fault"
    assert message["Message-ID"] == f"<gem-alarm-{alarm_id}@grid-event-monitor>"
    assert "Transfer: interrupted" in message.get_payload() and "Confidence: 97.0%" in message.get_payload()

    # raised again (a redelivered job, a second process): the unique (alarm, channel) key sends nothing
    assert notifier.alarm_raised(alarm_id) == []
    assert notifier.attempt(alarm_id, WEBHOOK) is None
    time.sleep(0.2)
    assert len(receiver.requests) == 1 and len(smtp.messages) == 1
    assert [row["channel"] for row in notifier.for_alarm(alarm_id)] == [EMAIL, WEBHOOK]


def test_nfy003_a_receiver_that_fails_twice_gets_it_on_the_third_attempt_after_backing_off(history):
    flaky = Receiver(failures=2)
    try:
        jobs, notifier = pipeline(history, NotifyConfig(webhook_url=flaky.url, retries=5, backoff_s=0.2))
        alarm_id = finish(jobs)
        row = wait_for(notifier, alarm_id, WEBHOOK)
        assert (row["state"], row["attempts"]) == (SENT, 3)
        assert row["last_error"] == "webhook answered HTTP 503"  # the last failure stays on record
        times = [request["at"] for request in flaky.requests]
        assert len(times) == 3
        assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4  # 0.2 s, then doubled
    finally:
        flaky.close()


def test_nfy004_dead_receivers_are_recorded_as_failed_after_the_attempts(history):
    config = NotifyConfig(webhook_url=f"http://127.0.0.1:{free_port()}/hook", smtp_host="127.0.0.1",
                          smtp_port=free_port(), smtp_to=("ops@example.com",), retries=3, backoff_s=0.01,
                          timeout_s=2)
    jobs, notifier = pipeline(history, config)
    alarm_id = finish(jobs, "major")
    hook = wait_for(notifier, alarm_id, WEBHOOK)
    mail = wait_for(notifier, alarm_id, EMAIL)
    assert (hook["state"], hook["attempts"], hook["sent_at"]) == (FAILED, 3, None)
    assert hook["last_error"].startswith("webhook unreachable")
    assert (mail["state"], mail["attempts"]) == (FAILED, 3)
    assert mail["last_error"].startswith("SMTP server unreachable")
    assert notifier.attempt(alarm_id, WEBHOOK) is None  # given up: no fourth attempt


def test_nfy005_a_slow_webhook_never_holds_the_analysis(history, receiver):
    receiver.hold.clear()  # the receiver keeps each request until released
    jobs, notifier = pipeline(history, NotifyConfig(webhook_url=receiver.url, timeout_s=10))
    alarm_id = finish(jobs)  # returns with the alarm committed while the webhook still waits
    assert receiver.arrived.wait(10)
    assert notifier.get(alarm_id, WEBHOOK)["state"] == SENDING
    assert jobs.alarms.get(alarm_id) is not None and jobs.history.count() == 1
    # another process trying the same delivery meanwhile: the claim is held, it sends nothing
    other = Notifier(jobs.alarms, notifier.config, submit=lambda *_: None)
    assert other.attempt(alarm_id, WEBHOOK) is None
    receiver.hold.set()
    assert wait_for(notifier, alarm_id, WEBHOOK)["state"] == SENT
    assert len(receiver.requests) == 1


def test_nfy006_with_a_broker_each_delivery_is_a_celery_task_and_leftovers_are_offered_again(history, receiver):
    class FakeCelery:
        def __init__(self):
            self.sent = []

        def send_task(self, name, args, queue):
            self.sent.append((name, tuple(args), queue))

    celery = FakeCelery()
    settings = Settings(webhook_url=receiver.url, smtp_host="127.0.0.1", smtp_to="ops@example.com",
                        job_queue="q-test")
    alarms = AlarmStore(history)
    notifier = attach_notifier(settings, alarms, celery)
    assert alarms.notifier is notifier
    alarm_id = finish(JobStore(history, alarms))
    assert celery.sent == [("gem.deliver_notification", (alarm_id, WEBHOOK), "q-test"),
                           ("gem.deliver_notification", (alarm_id, EMAIL), "q-test")]
    assert receiver.requests == []  # the web process only queued them
    # what the worker's task does: one attempt, the next one's delay when it failed
    assert notifier.attempt(alarm_id, WEBHOOK) is None and len(receiver.requests) == 1
    # a process that stopped while an e-mail was pending: the next start offers it again
    with history.engine.begin() as connection:
        connection.execute(notifier.table.update().where(notifier.table.c.channel == EMAIL)
                           .values(next_attempt_at=utc_now() - timedelta(hours=1)))
    celery.sent.clear()
    assert attach_notifier(settings, AlarmStore(history), celery) is not None
    assert celery.sent == [("gem.deliver_notification", (alarm_id, EMAIL), "q-test")]
    assert attach_notifier(Settings(), alarms, celery) is None  # no channel configured: no notifier


def test_nfy007_the_celery_task_makes_one_attempt_a_run_and_retries_until_sent(history):
    """The worker's task `gem.deliver_notification` (run eagerly here: the same function a worker runs)."""
    from services.jobs import RecordPipeline
    from services.jobs.celery_app import make_celery
    from services.notify import DELIVER_TASK_NAME

    flaky = Receiver(failures=2)
    try:
        alarms = AlarmStore(history)
        jobs = JobStore(history, alarms)
        celery = make_celery("memory://", "q-notify-test",
                             lambda: RecordPipeline(jobs=jobs, predictor=lambda: None))
        sent = []
        notifier = Notifier(alarms, NotifyConfig(webhook_url=flaky.url, retries=5, backoff_s=0.01),
                            submit=lambda alarm_id, channel: sent.append((alarm_id, channel)))
        alarms.notifier = notifier
        alarm_id = finish(jobs)
        assert sent == [(alarm_id, WEBHOOK)] and flaky.requests == []
        celery.tasks[DELIVER_TASK_NAME].apply(args=[alarm_id, WEBHOOK])
        row = notifier.get(alarm_id, WEBHOOK)
        assert (row["state"], row["attempts"]) == (SENT, 3) and len(flaky.requests) == 3
        celery.tasks[DELIVER_TASK_NAME].apply(args=[alarm_id, WEBHOOK])  # delivered twice: sent once
        assert len(flaky.requests) == 3
    finally:
        flaky.close()


def test_nfy008_the_app_notifies_the_alarm_of_a_posted_record(tmp_path, receiver, smtp):
    """The whole path of the embedded default: POST /api/records -> job thread -> alarm -> webhook and e-mail."""
    from app import create_app
    from app.jobs import JOBS_KEY
    from services.analysis import EXTENSION_KEY
    from services.feed import Feed
    from services.labels import LABELS

    settings = Settings(instance_dir=tmp_path / "instance", webhook_url=receiver.url, smtp_host="127.0.0.1",
                        smtp_port=smtp.port, smtp_to="ops@example.com", notify_backoff_s=0.05)
    app = create_app(settings=settings)
    service = app.server.extensions[JOBS_KEY]
    try:
        record = Feed(seed=12, classes=[LABELS.index("internal_power_transformer_internal_faults_Class4")]).next_record()
        form = {"sender_peer": record.sender, "receiver_peer": record.receiver,
                "file": [(io.BytesIO(data), name) for name, data in record.files]}
        response = app.server.test_client().post("/api/records", data=form, content_type="multipart/form-data")
        assert response.status_code == 202
        alarms = service.jobs.alarms
        notifier = alarms.notifier
        deadline = time.monotonic() + 60
        while not alarms.recent() and time.monotonic() < deadline:
            time.sleep(0.05)
        [alarm] = alarms.recent()
        assert wait_for(notifier, alarm["id"], WEBHOOK)["state"] == SENT
        assert wait_for(notifier, alarm["id"], EMAIL)["state"] == SENT
        assert [request["body"]["alarm_id"] for request in receiver.requests] == [alarm["id"]]
        assert len(smtp.messages) == 1 and record.stem in smtp.messages[0]["message"].get_payload()
    finally:
        service.stop(close_engine=True)
        app.server.extensions[EXTENSION_KEY].store.dispose()
