"""Live page and navbar badge callbacks (issue 13 item 3): thin glue between the page's interval and
the job and alarm stores.

- every second (only while the tab is visible: a clientside gate passes the interval's ticks on),
  `live_view` reads the newest live jobs (watched folder and /api/records, two indexed queries
  with a limit) and alarms; when nothing changed since the last poll the browser draws nothing;
- `acknowledge` records who (the name the operator typed, kept in the browser, else "operator")
  and when through `AlarmStore.acknowledge`, and refreshes the badge at once;
- every two seconds, on every page, `badge` shows the count of unacknowledged alarms.

The functions take the JobService and return plain outputs, so the tests call them without a browser.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from components import ids
from components.live import DEFAULT_OPERATOR, alarm_badge_text, alarm_list, events_table
from services.alarms import AlarmError
from services.grid import display_names
from services.history import HistoryUnavailable
from services.jobs import API_SOURCE, WATCH_SOURCE, JobService
from services.rules.events import SEVERITIES

log = logging.getLogger(__name__)

#: the live sources (batch jobs have their own page) and how many events / alarms the page shows
LIVE_SOURCES: tuple[str, ...] = (WATCH_SOURCE, API_SOURCE)
EVENT_LIMIT = 25
ALARM_LIMIT = 20
#: alarms read per poll before the severity filter
ALARM_READ = 60

#: passes the interval's tick on only while the page is visible, so a hidden tab costs the server nothing
_VISIBLE_TICK = """
function (n) {
    return document.hidden ? window.dash_clientside.no_update : n;
}
"""


def live_events(jobs: JobService, limit: int = EVENT_LIMIT) -> list[dict[str, Any]]:
    """The newest live jobs with their verdicts, newest first (one indexed query per source)."""
    found: list[dict[str, Any]] = []
    for source in LIVE_SOURCES:
        found += jobs.recent(limit, source=source, with_analysis=True)
    found.sort(key=lambda job: (job.get("created_at") or "", job["id"]), reverse=True)
    return found[:limit]


def shown_alarms(jobs: JobService, severities: Sequence[str] | None, limit: int = ALARM_LIMIT) -> list[dict[str, Any]]:
    """The newest alarms of the chosen severities (open and acknowledged alike)."""
    alarms = jobs.jobs.alarms
    if alarms is None:
        return []
    wanted = chosen_severities(severities)
    return [alarm for alarm in alarms.recent(ALARM_READ) if alarm["severity"] in wanted][:limit]


def chosen_severities(value: Any) -> set[str]:
    """The checklist's value as the browser sent it, kept to real severity names (anything else: none)."""
    if not isinstance(value, list | tuple):
        return set()
    return {item for item in value if isinstance(item, str) and item in SEVERITIES}


def fingerprint(events: Sequence[Mapping[str, Any]], alarms: Sequence[Mapping[str, Any]],
                severities: Sequence[str] | None) -> list:
    """What the screen depends on: ids and states of the events, ids and acknowledgement of the alarms."""
    return [[[job["id"], job["state"]] for job in events],
            [[alarm["id"], bool(alarm.get("acknowledged"))] for alarm in alarms],
            sorted(chosen_severities(severities))]


def live_view(jobs: JobService, severities: Sequence[str] | None, seen: Any,
              href_for: Callable[[int], str], names: Mapping[str, str] | None = None) -> tuple[Any, Any, Any]:
    """(events, alarms, fingerprint) of one poll; no_update for all three when nothing changed."""
    try:
        events = live_events(jobs)
        alarms = shown_alarms(jobs, severities)
    except (SQLAlchemyError, HistoryUnavailable) as exc:
        log.warning("live page poll failed: %s", type(exc).__name__)
        notice = html.Div("The history database does not answer; the list resumes when it does.",
                          className="alert alert-warning small py-1 mb-2", role="status")
        return notice, no_update, None
    now = fingerprint(events, alarms, severities)
    if now == seen:
        return no_update, no_update, no_update
    return events_table(events, href_for, names), alarm_list(alarms, href_for, names), now


def acknowledge(jobs: JobService, alarm_id: Any, who: str | None) -> tuple[str, str]:
    """Acknowledge one alarm as `who` (or "operator"); (message, colour) for the status line."""
    alarms = jobs.jobs.alarms
    if alarms is None or isinstance(alarm_id, bool) or not isinstance(alarm_id, int):
        return "No such alarm.", "danger"
    try:
        name = who.strip() if isinstance(who, str) else ""
        alarm = alarms.acknowledge(alarm_id, name or DEFAULT_OPERATOR)
    except AlarmError as exc:
        return str(exc).capitalize() + ".", "danger"
    except (SQLAlchemyError, HistoryUnavailable):
        return "Not acknowledged: the history database does not answer; try again.", "danger"
    if alarm is None:
        return f"No alarm #{alarm_id}.", "danger"
    return f"Alarm #{alarm_id} acknowledged by {alarm['acknowledged_by']}.", "success"


def unacknowledged(jobs: JobService | None) -> int | None:
    """The badge's number; None when it cannot be read."""
    if jobs is None or jobs.jobs.alarms is None:
        return 0
    try:
        return jobs.jobs.alarms.unacknowledged_count()
    except (SQLAlchemyError, HistoryUnavailable):
        return None


def register(app: dash.Dash, jobs: JobService | None, href_for: Callable[[int], str],
             current_user: Callable[[], str | None] = lambda: None) -> None:
    """The Live page's poll and Acknowledge, and the navbar badge, on `app` (its JobService)."""
    names = display_names()
    for interval, tick in ((ids.LIVE_INTERVAL, ids.LIVE_TICK), (ids.NAV_ALARM_INTERVAL, ids.NAV_ALARM_TICK)):
        app.clientside_callback(_VISIBLE_TICK, Output(tick, "data"), Input(interval, "n_intervals"))

    def badge_outputs() -> tuple[str, str, str]:
        return alarm_badge_text(unacknowledged(jobs))

    @app.callback(Output(ids.NAV_ALARM_COUNT, "children"), Output(ids.NAV_ALARM_COUNT, "color"),
                  Output(ids.NAV_ALARMS, "title"), Input(ids.NAV_ALARM_TICK, "data"))
    def badge(_tick):
        return badge_outputs()

    if jobs is None:
        return

    @app.callback(Output(ids.LIVE_EVENTS, "children"), Output(ids.LIVE_ALARMS, "children"),
                  Output(ids.LIVE_SEEN, "data"), Input(ids.LIVE_TICK, "data"),
                  Input(ids.LIVE_ALARM_SEVERITIES, "value"), Input(ids.LIVE_ACK_DONE, "data"),
                  State(ids.LIVE_SEEN, "data"))
    def poll(_tick, severities, _ack, seen):
        return live_view(jobs, severities, seen, href_for, names)

    @app.callback(Output(ids.LIVE_ACK_STATUS, "children"), Output(ids.LIVE_ACK_DONE, "data"),
                  Output(ids.NAV_ALARM_COUNT, "children", allow_duplicate=True),
                  Output(ids.NAV_ALARM_COUNT, "color", allow_duplicate=True),
                  Output(ids.NAV_ALARMS, "title", allow_duplicate=True),
                  Input({"type": ids.LIVE_ACK, "alarm": ALL}, "n_clicks"), State(ids.LIVE_OPERATOR, "value"),
                  State(ids.LIVE_ACK_DONE, "data"), prevent_initial_call=True)
    def acknowledge_clicked(clicks, who, done):
        trigger = ctx.triggered_id
        if not isinstance(trigger, Mapping) or not any(item.get("value") for item in ctx.triggered):
            return (no_update,) * 5  # the list was redrawn: new buttons, no click
        # logged in, the alarm is acknowledged by that user, not by the free-text name (issue 14)
        message, colour = acknowledge(jobs, trigger.get("alarm"), current_user() or who)
        return (html.Div(message, className=f"text-{colour} mb-2"), int(done or 0) + 1, *badge_outputs())
