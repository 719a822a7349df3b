"""The Live page's layout (issue 13 item 3): live events newest first, the alarm list with its
Acknowledge buttons, and the navbar's unacknowledged-alarm badge. Pure builders: rows are the
dicts `JobStore.recent(with_analysis=True)` and `AlarmStore.recent` return; links come from the
caller's `href_for` (the app's `get_relative_path`), so a URL prefix applies in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.cards import section_title
from components.microgrid import SEVERITY_COLOURS, normalise_severity
from components.tables import format_time, severity_badge
from services.labels import EQUIPMENT_NAMES, display_label

#: how often the Live page asks for new events (ms): a record shows about half a second after its analysis
LIVE_POLL_MS = 500
#: how often every page asks for the unacknowledged-alarm count (ms)
BADGE_POLL_MS = 2000
DEFAULT_OPERATOR = "operator"
STATE_WORDS = {"queued": "Queued", "running": "Analysing", "failed": "Rejected", "cancelled": "Cancelled"}


def live_page(alarm_severities: Sequence[str], *, watching: bool, engine: str) -> html.Div:
    """The page: a status line, the events card and the alarms card, with the poll's interval and stores.
    `alarm_severities`: those the app raises alarms for (GEM_ALARM_SEVERITIES), all shown at first."""
    source = ("Records dropped in the watched folder and posted to /api/records appear here as they are analysed"
              if watching else "Records posted to /api/records appear here as they are analysed (no folder is "
                               "watched: set GEM_WATCH_DIR)")
    header = html.Div([
        html.H1("Live monitoring", id=ids.PAGE_HEADING, className="h4 mb-1"),
        html.Div([source, f"; analysed by {engine}. Newest first, updated twice a second."],
                 className="text-muted small", id=ids.LIVE_STATUS),
    ], className="mb-3")
    events = dbc.Card([
        section_title("Live events"),
        html.Div(events_table([], lambda _id: "#"), id=ids.LIVE_EVENTS),
    ], body=True, className="shadow-sm mb-3")
    alarms = dbc.Card([
        section_title("Alarms"),
        alarm_controls(alarm_severities),
        html.Div(id=ids.LIVE_ACK_STATUS, role="status", className="small"),
        html.Div(alarm_list([], lambda _id: "#"), id=ids.LIVE_ALARMS),
    ], body=True, className="shadow-sm mb-3")
    return html.Div([
        header,
        dbc.Row([dbc.Col(events, lg=7, xl=8), dbc.Col(alarms, lg=5, xl=4)], className="g-3"),
        dcc.Interval(id=ids.LIVE_INTERVAL, interval=LIVE_POLL_MS, n_intervals=0),
        dcc.Store(id=ids.LIVE_TICK),  # the interval's ticks, passed on only while the tab is visible
        dcc.Store(id=ids.LIVE_SEEN),  # what is on screen (ids and states): an unchanged poll draws nothing
        dcc.Store(id=ids.LIVE_ACK_DONE),  # bumped by an acknowledgement: redraw the list at once
    ], id=ids.LIVE_PAGE)


def alarm_controls(alarm_severities: Sequence[str]) -> html.Div:
    """Which severities the list shows (of those alarmed on) and who acknowledges (kept in the browser)."""
    options = [{"label": level.capitalize(), "value": level} for level in alarm_severities]
    checklist = dbc.Checklist(options=options, value=list(alarm_severities), id=ids.LIVE_ALARM_SEVERITIES,
                              inline=True, labelClassName="small", persistence=True, persistence_type="local")
    return html.Div([
        # always in the layout (the poll's input), even when no severity raises alarms
        html.Div([html.Span("Show", className="small text-muted me-2", id=f"{ids.LIVE_ALARM_SEVERITIES}-label"),
                  checklist],
                 className="d-flex align-items-center flex-wrap mb-2", role="group",
                 **{"aria-labelledby": f"{ids.LIVE_ALARM_SEVERITIES}-label"}) if options else
        html.Div([checklist, "No severity raises alarms (GEM_ALARM_SEVERITIES=none)."], className="small text-muted mb-2"),
        dbc.InputGroup([
            dbc.InputGroupText(html.Label("Acknowledge as", htmlFor=ids.LIVE_OPERATOR, className="mb-0")),
            dbc.Input(id=ids.LIVE_OPERATOR, placeholder=DEFAULT_OPERATOR, maxLength=64, type="text",
                      persistence=True, persistence_type="local", debounce=True),
        ], size="sm", className="mb-2"),
    ])



def unit_name(equipment: object) -> str:
    """The unit an event hit, as people name it ("ispar_series" -> "ISPAR series unit")."""
    if not equipment or equipment == "none":
        return "No unit (system transient)"
    return EQUIPMENT_NAMES.get(str(equipment), str(equipment))


def _peers(sender: object, receiver: object, names: Mapping[str, str]) -> str:
    return f"{names.get(str(sender), sender)} \u2192 {names.get(str(receiver), receiver)}"


def events_table(jobs: Sequence[Mapping[str, Any]], href_for: Callable[[int], str],
                 names: Mapping[str, str] | None = None) -> html.Div:
    """Live events newest first: time, event (linked to its analysis), severity, unit, transfer and
    the record; a rejected record says why, one still in the queue says so."""
    names = names or {}
    if not jobs:
        return html.Div("Waiting for records: nothing has arrived yet.", className="text-muted small py-2",
                        id=ids.LIVE_EMPTY)
    header = html.Thead(html.Tr([html.Th(title, scope="col") for title in
                                 ("Time (UTC)", "Event", "Severity", "Unit", "Transfer", "Record")]))
    return html.Div(dbc.Table([header, html.Tbody([event_row(job, href_for, names) for job in jobs])],
                              size="sm", hover=True, className="mb-0 align-middle live-events"),
                    className="table-responsive")


def event_row(job: Mapping[str, Any], href_for: Callable[[int], str], names: Mapping[str, str]) -> html.Tr:
    """One event: a done job with its verdict, or a queued / running / rejected record."""
    analysis = job.get("analysis") or None
    state = str(job.get("state") or "")
    record = html.Td(html.Span(str(job.get("name") or ""), className="text-break"), className="small text-muted")
    day, _, clock = format_time(job.get("finished_at") or job.get("created_at")).partition(" ")
    when = html.Td([html.Div(clock), html.Div(day, className="text-muted")], className="text-nowrap small")
    colour = "#adb5bd"  # grey for a record without a verdict
    transfer = _peers(job.get("sender"), job.get("receiver"), names)
    if analysis and job.get("analysis_id") is not None:
        level = normalise_severity(analysis.get("severity"))
        when.style = {"borderLeft": f"4px solid {SEVERITY_COLOURS[level]}"}
        status = str(analysis.get("transfer_status") or "").replace("_", " ")
        event = html.Td([
            dcc.Link(display_label(analysis.get("label")), href=href_for(int(job["analysis_id"])),
                     className="fw-semibold", title=str(analysis.get("headline") or analysis.get("label") or "")),
            html.Div(f"{float(analysis.get('confidence') or 0):.1%} confident"
                     + (" \u00b7 unknown event" if analysis.get("unknown") else ""), className="small text-muted"),
        ])
        cells = [when, event, html.Td(severity_badge(analysis.get("severity"))),
                 html.Td(unit_name(analysis.get("equipment")), className="small"),
                 html.Td([transfer, html.Div(status, className="small text-muted")], className="small"), record]
        return html.Tr(cells, id={"type": ids.LIVE_EVENT_ROW, "job": str(job["id"])},
                       className=f"live-row sev-row-{level}")
    when.style = {"borderLeft": f"4px solid {colour}"}
    word = STATE_WORDS.get(state, state.capitalize())
    if state == "failed":
        detail = html.Td([html.Span(word, className="badge text-bg-secondary me-2"),
                          html.Span(str(job.get("error") or "unreadable record"), className="small")], colSpan=3)
    else:
        detail = html.Td(html.Span(f"{word}\u2026", className="small text-muted"), colSpan=3)
    return html.Tr([when, detail, html.Td(transfer, className="small"), record],
                   id={"type": ids.LIVE_EVENT_ROW, "job": str(job["id"])},
                   className=f"live-row live-{state}")


def alarm_list(alarms: Sequence[Mapping[str, Any]], href_for: Callable[[int], str],
               names: Mapping[str, str] | None = None) -> html.Div:
    """Alarms newest first: open ones with an Acknowledge button, acknowledged ones with who and when."""
    names = names or {}
    if not alarms:
        return html.Div("No alarms.", className="text-muted small py-2")
    return html.Ul([alarm_item(alarm, href_for, names) for alarm in alarms], className="list-unstyled mb-0")


def alarm_item(alarm: Mapping[str, Any], href_for: Callable[[int], str], names: Mapping[str, str]) -> html.Li:
    level = normalise_severity(alarm.get("severity"))
    alarm_id = int(alarm["id"])
    title = html.Div([
        severity_badge(alarm.get("severity")),
        dcc.Link(str(alarm.get("headline") or display_label(alarm.get("label"))), href=href_for(int(alarm["analysis_id"])),
                 className="ms-2 fw-semibold"),
    ])
    facts = html.Div([
        f"#{alarm_id} \u00b7 {format_time(alarm.get('created_at'))} UTC \u00b7 ",
        unit_name(alarm.get("equipment")), " \u00b7 ",
        _peers(alarm.get("sender"), alarm.get("receiver"), names),
        f" ({str(alarm.get('transfer_status') or '').replace('_', ' ')})" if alarm.get("transfer_status") else "",
    ], className="small text-muted")
    if alarm.get("acknowledged"):
        action = html.Div(f"Acknowledged by {alarm.get('acknowledged_by')} at "
                          f"{format_time(alarm.get('acknowledged_at'))} UTC",
                          className="small text-success", id={"type": ids.LIVE_ACK_BY, "alarm": alarm_id})
    else:
        action = html.Button("Acknowledge", id={"type": ids.LIVE_ACK, "alarm": alarm_id}, type="button",
                             className="btn btn-sm btn-outline-dark mt-1", n_clicks=0,
                             **{"aria-label": f"Acknowledge alarm {alarm_id}"})
    return html.Li([title, facts, action], id={"type": ids.LIVE_ALARM_ITEM, "alarm": alarm_id},
                   className="ps-2 py-1 mb-2 live-alarm" + (" live-alarm-acknowledged" if alarm.get("acknowledged") else ""),
                   style={"borderLeft": f"4px solid {SEVERITY_COLOURS[level]}"})


def alarm_badge_text(count: int | None) -> tuple[str, str, str]:
    """(badge text, badge colour, accessible title) for the navbar's unacknowledged count."""
    if count is None:
        return "?", "secondary", "Alarms: count unavailable"
    noun = "alarm" if count == 1 else "alarms"
    return str(count), ("danger" if count else "secondary"), f"{count} unacknowledged {noun}"


def nav_alarm_badge(href: str) -> html.Div:
    """The navbar's alarm link with its count badge, and the interval that refreshes it on every page."""
    text, colour, title = alarm_badge_text(0)
    return html.Div([
        dcc.Link([html.Span("Alarms", className="d-none d-md-inline", **{"aria-hidden": "true"}),
                  html.Span("Unacknowledged alarms", className="visually-hidden"),
                  dbc.Badge(text, id=ids.NAV_ALARM_COUNT, color=colour, pill=True, className="ms-1")],
                 href=href, id=ids.NAV_ALARMS, title=title, className="nav-link px-2 text-light"),
        dcc.Interval(id=ids.NAV_ALARM_INTERVAL, interval=BADGE_POLL_MS, n_intervals=0),
        dcc.Store(id=ids.NAV_ALARM_TICK),
    ], className="d-flex align-items-center ms-auto me-1 order-md-last")
