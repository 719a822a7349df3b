"""The Live page's callback functions without a browser (issue 13 item 3): which events and alarms a
poll shows, that an unchanged poll draws nothing, and what Acknowledge records."""

from __future__ import annotations

import pytest
from dash import no_update

from callbacks.live import acknowledge, fingerprint, live_events, live_view, shown_alarms, unacknowledged
from components import ids
from components.live import alarm_badge_text, alarm_list, events_table, live_page, nav_alarm_badge
from services.alarms import AlarmStore
from services.history import HistoryStore
from services.jobs import JobService, JobStore
from tests.layout import find_by_id, text_of
from tests.test_alarms import history_row


def find_all(component, predicate) -> list:
    """Every component of a layout tree that `predicate` accepts, in document order."""
    if isinstance(component, list | tuple):
        return [found for item in component for found in find_all(item, predicate)]
    if component is None or isinstance(component, str | int | float):
        return []
    own = [component] if predicate(component) else []
    return own + find_all(getattr(component, "children", None), predicate)


class NoEngine:
    name = "threads"

    def submit(self, job_id: str) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture()
def service(tmp_path):
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    yield JobService(JobStore(history, AlarmStore(history)), NoEngine())
    history.dispose()


def finished(service: JobService, severity: str, source: str = "watch", name: str = "r.cfg") -> str:
    jobs = service.jobs
    job_id = jobs.create(source=source, name=name, files=[("r.npy", b"x")], sender="prosumer-a", receiver="ev-hub")
    jobs.claim(job_id)
    jobs.finish(job_id, jobs.history._row(history_row(severity, source=source)))
    return job_id


def href(analysis_id: int) -> str:
    return f"/grid/analysis/{analysis_id}"


def test_liv001_a_poll_shows_live_events_newest_first_with_rejected_ones_and_skips_batches(service):
    first = finished(service, "critical", name="first.cfg")
    rejected = service.jobs.create(source="watch", name="broken.npy", files=None, sender="prosumer-a",
                                   receiver="ev-hub", error="not a .npy file")
    posted = finished(service, "minor", source="api-records", name="posted.cfg")
    service.jobs.create(source="batch", name="archived.cfg", files=[("a.npy", b"x")], sender="prosumer-a",
                        receiver="ev-hub", batch_id="b" * 32)
    events = live_events(service)
    assert [job["id"] for job in events] == [posted, rejected, first]

    table = events_table(events, href, {"prosumer-a": "Prosumer Alpha", "ev-hub": "EV hub"})
    rows = find_all(table, lambda c: getattr(c, "id", None) and isinstance(c.id, dict)
                    and c.id.get("type") == ids.LIVE_EVENT_ROW)
    assert [row.id["job"] for row in rows] == [posted, rejected, first]
    texts = [text_of(row) for row in rows]
    assert "Rejected" in texts[1] and "not a .npy file" in texts[1] and "broken.npy" in texts[1]
    assert "Critical" in texts[2] and "Power transformer" in texts[2] and "Prosumer Alpha \u2192 EV hub" in texts[2]
    links = find_all(rows[2], lambda c: type(c).__name__ == "Link")
    assert links[0].href == href(service.jobs.get(first)["analysis_id"])


def test_liv002_alarms_follow_the_chosen_severities_and_an_unchanged_poll_draws_nothing(service):
    finished(service, "critical")
    finished(service, "major")
    assert [alarm["severity"] for alarm in shown_alarms(service, ["major"])] == ["major"]
    assert [alarm["severity"] for alarm in shown_alarms(service, ["critical", "major"])] == ["major", "critical"]
    assert shown_alarms(service, []) == []

    events, alarms, seen = live_view(service, ["critical", "major"], None, href)
    assert seen == fingerprint(live_events(service), shown_alarms(service, ["critical", "major"]), ["critical", "major"])
    assert len(find_all(alarms, lambda c: getattr(c, "id", None) and isinstance(c.id, dict)
                        and c.id.get("type") == ids.LIVE_ACK)) == 2
    assert live_view(service, ["critical", "major"], seen, href) == (no_update, no_update, no_update)
    finished(service, "info")  # a new event: drawn again
    assert live_view(service, ["critical", "major"], seen, href)[2] != seen


def test_liv003_acknowledge_records_who_and_when_and_the_badge_counts_what_is_left(service):
    finished(service, "critical")
    finished(service, "major")
    assert unacknowledged(service) == 2 and alarm_badge_text(2) == ("2", "danger", "2 unacknowledged alarms")
    newest = shown_alarms(service, ["critical", "major"])[0]
    assert acknowledge(service, newest["id"], "  Ana  ") == (f"Alarm #{newest['id']} acknowledged by Ana.", "success")
    assert acknowledge(service, newest["id"], "Bo")[1] == "success"  # a second one does not overwrite
    stored = service.jobs.alarms.get(newest["id"])
    assert stored["acknowledged_by"] == "Ana" and stored["acknowledged_at"]
    assert unacknowledged(service) == 1
    older = shown_alarms(service, ["critical"])[0]
    assert acknowledge(service, older["id"], None)[0].endswith("acknowledged by operator.")  # no name typed
    assert acknowledge(service, 999, "Ana") == ("No alarm #999.", "danger")
    assert acknowledge(service, "1; drop", "Ana")[1] == "danger"
    assert acknowledge(service, 1, "x" * 80)[1] == "danger"
    assert alarm_badge_text(0)[1] == "secondary" and alarm_badge_text(None)[0] == "?"

    listed = alarm_list(shown_alarms(service, ["critical", "major"]), href)
    done = find_all(listed, lambda c: getattr(c, "id", None) and isinstance(c.id, dict)
                    and c.id.get("type") == ids.LIVE_ACK_BY)
    assert [text_of(item).split(" at ")[0] for item in done] == ["Acknowledged by Ana", "Acknowledged by operator"]
    assert find_by_id(nav_alarm_badge("/grid/live"), ids.NAV_ALARMS).href == "/grid/live"


@pytest.mark.parametrize("severities", [("critical", "major"), ()])
def test_liv004_the_page_holds_every_input_of_its_poll_even_without_alarms(severities):
    page = live_page(severities, watching=False, engine="worker threads")
    for component_id in (ids.LIVE_INTERVAL, ids.LIVE_TICK, ids.LIVE_SEEN, ids.LIVE_ACK_DONE, ids.LIVE_EVENTS,
                         ids.LIVE_ALARMS, ids.LIVE_ALARM_SEVERITIES, ids.LIVE_OPERATOR, ids.LIVE_ACK_STATUS):
        assert find_by_id(page, component_id) is not None, component_id
    checklist = find_by_id(page, ids.LIVE_ALARM_SEVERITIES)
    assert checklist.value == list(severities) and [o["value"] for o in checklist.options] == list(severities)
    assert "GEM_WATCH_DIR" in text_of(find_by_id(page, ids.LIVE_STATUS))
    assert ("GEM_ALARM_SEVERITIES=none" in text_of(page)) == (not severities)
