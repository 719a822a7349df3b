"""Accessibility, keyboard and phone checks of every page in headless Chromium (dash_duo).

axe-core (tests/assets/axe-core/axe.min.js, MPL-2.0, a test-only copy: never served to users) is
injected into each page with Selenium and run at desktop (1440 px) and phone (390 px) width; any
critical or serious violation fails. At phone width no page may scroll sideways, the navbar
collapses behind its toggler, and the result scrolls into view after Analyze. The Sample /
Simulate / Upload tabs and the Analyze button are driven with the keyboard only (TAB, ENTER).

Run with `pytest --headless tests/test_browser_a11y.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from app import create_app
from app.settings import Settings
from components import ids

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
AXE_JS = Path(__file__).resolve().parent / "assets" / "axe-core" / "axe.min.js"
TIMEOUT = 20
#: (width, height) in CSS pixels
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}
FAILING_IMPACTS = ("critical", "serious")
#: what a page shows once it is drawn: (path, CSS selector)
PAGES = (
    ("/", f"#{ids.ANALYZE_PAGE} #{ids.MICROGRID} canvas"),
    ("/network", f"#{ids.NETWORK_BUSES} .main-svg"),
    ("/history", f"#{ids.HISTORY_GRID} .ag-row"),
    ("/model", f"#{ids.MODEL_CONFUSION} .main-svg"),
    ("/analysis/1", f"#{ids.ANALYSIS_WAVEFORM} .main-svg"),
    ("/no-such-page", "main h1"),
)


@pytest.fixture
def app(tmp_path):
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    settings = Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                        instance_dir=tmp_path / "instance")
    return create_app(settings=settings)


def set_viewport(driver, width: int, height: int) -> None:
    """Emulate a viewport of exactly width x height CSS pixels (a phone is also a touch device)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def axe_violations(driver) -> list[dict]:
    """axe-core's violations on the current page (WCAG 2.x A/AA and best-practice rules)."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    settle_scrolling(driver)  # a result still smooth-scrolling into view moves what axe looks at
    driver.set_script_timeout(60)
    # axe judges colours as drawn: a CSS transition still running (a button the pointer came to rest
    # on after a re-render, fading to its hover colour) would be measured half-way, so finite
    # animations are let finish first (at most 2 s; spinners run forever and are not waited for).
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const running = document.getAnimations()"
        "  .filter(a => a.effect && a.effect.getComputedTiming().endTime !== Infinity).map(a => a.finished);"
        "Promise.race([Promise.allSettled(running), new Promise(r => setTimeout(r, 2000))])"
        "  .then(() => axe.run(document, {resultTypes: ['violations']}))"
        "  .then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify({error: String(e)})));")
    violations = json.loads(result)
    assert not isinstance(violations, dict), violations
    return violations


def describe(violations: list[dict]) -> str:
    """One line per violation with the first offending nodes, for the failure message."""
    lines = []
    for violation in violations:
        targets = [" ".join(map(str, node.get("target", []))) for node in violation.get("nodes", [])[:4]]
        lines.append(f"{violation['impact']} {violation['id']} ({len(violation['nodes'])} nodes): "
                     f"{violation['help']} -> {targets}")
        # axe's own finding for the first node (for contrast: the colours and ratio it measured)
        summary = next((node.get("failureSummary") for node in violation.get("nodes", [])), None)
        if summary:
            lines.append("    " + " ".join(summary.split()))
    return "\n".join(lines)


def _open(dash_duo, path: str, marker: str) -> None:
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + path)
    dash_duo.wait_for_element(marker, timeout=TIMEOUT)
    # every page has the landmarks and one level-1 heading
    assert dash_duo.find_elements("header nav"), f"{path}: no <header> with a <nav>"
    assert len(dash_duo.find_elements("main")) == 1, f"{path}: not exactly one <main>"
    assert len(dash_duo.find_elements("main h1")) == 1, f"{path}: not exactly one <h1> in <main>"


def serious(violations: list[dict]) -> list[dict]:
    return [violation for violation in violations if violation.get("impact") in FAILING_IMPACTS]


def settle_scrolling(driver) -> None:
    """Wait until the page stops scrolling (at most 5 s): on a phone a new result smooth-scrolls
    into view (callbacks/clientside.py), and an element scrolled to meanwhile is carried away."""
    driver.set_script_timeout(10)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "let last = window.scrollY, still = 0, ticks = 0;"
        "const tick = () => { const y = window.scrollY; still = y === last ? still + 1 : 0; last = y;"
        "  if (still >= 3 || ++ticks > 50) { done(true); } else { setTimeout(tick, 100); } };"
        "setTimeout(tick, 100);")


def _click(dash_duo, element) -> None:
    """Click `element` as a user would, once the page holds still and the element is in view."""
    settle_scrolling(dash_duo.driver)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    element.click()


def _open_tab(dash_duo, title: str) -> None:
    tab = next(element for element in dash_duo.find_elements(f"#{ids.EVENT_SOURCE_TABS} [role=tab]")
               if element.text == title)
    _click(dash_duo, tab)
    dash_duo.wait_for_text_to_equal(f"#{ids.EVENT_SOURCE_TABS} .nav-link.active", title, timeout=TIMEOUT)


def _analyze_sample(dash_duo, kind: str, analysis_number: int) -> None:
    """Choose the bundled sample of a transient kind and analyse it (the result is analysis #number)."""
    from selenium.webdriver.support.select import Select

    select = Select(dash_duo.find_element(f"#{ids.SAMPLE}"))
    select.select_by_value(next(option.get_attribute("value") for option in select.options
                                if kind in option.get_attribute("value")))
    _click(dash_duo, dash_duo.find_element(f"#{ids.ANALYZE_BUTTON}"))
    dash_duo.wait_for_contains_text(f"#{ids.RESULT_PERMALINK}", f"#{analysis_number}", timeout=TIMEOUT)


def _analyze_once(dash_duo) -> None:
    _click(dash_duo, dash_duo.wait_for_element(f"#{ids.ANALYZE_BUTTON}", timeout=TIMEOUT))
    dash_duo.wait_for_element(f"#{ids.CONFIDENCE_VALUE}", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.MICROGRID_CAPTION}", "Severity", timeout=TIMEOUT)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a11y001_no_serious_axe_violation_on_any_page(dash_duo, app, width):
    """axe-core on every page (the Analyze page with a result shown) at desktop and phone width."""
    dash_duo.start_server(app)
    set_viewport(dash_duo.driver, *WIDTHS[width])
    found: dict[str, list[dict]] = {}
    overflow: dict[str, int] = {}
    console: list[dict] = []
    for path, marker in PAGES:
        _open(dash_duo, path, marker)
        if path == "/":
            _analyze_once(dash_duo)
            for tab in ("Simulate", "Upload", "Sample"):  # the hidden panels' controls count too
                _open_tab(dash_duo, tab)
                found[f"/ ({tab} tab)"] = serious(axe_violations(dash_duo.driver))
            # other severities and transfer states draw other badge colours
            for number, kind in enumerate(("external_fault_with_CT_saturation", "capacitor_switching"), start=2):
                _analyze_sample(dash_duo, kind, number)
                found[f"/ ({kind})"] = serious(axe_violations(dash_duo.driver))
        found[path] = serious(axe_violations(dash_duo.driver))
        scroll_width = dash_duo.driver.execute_script("return document.documentElement.scrollWidth;")
        if scroll_width > WIDTHS[width][0]:
            overflow[path] = scroll_width
        # the page for an unknown address is answered with HTTP 404, which the browser logs
        console += [entry for entry in dash_duo.get_logs() or []
                    if not (path == "/no-such-page" and "404" in entry.get("message", "")
                            and entry.get("source") == "network")]
    report = "\n".join(f"{path}:\n{describe(violations)}" for path, violations in found.items() if violations)
    assert not report, f"axe-core at {width} width:\n{report}"
    assert not overflow, f"pages wider than the {WIDTHS[width][0]} px window (scrollWidth): {overflow}"
    assert console == []
    assert dash_duo.get_logs() == []


def press(dash_duo, key: str) -> None:
    """One key press on whatever has the focus (as a user types; no element is addressed)."""
    ActionChains(dash_duo.driver).send_keys(key).perform()


def _focus_by_tab(dash_duo, predicate_js: str, limit: int = 80) -> None:
    """Press TAB from the top of the page until the focused element satisfies `predicate_js` (a JS
    expression on `el`)."""
    dash_duo.driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    for _ in range(limit):
        press(dash_duo, Keys.TAB)
        if dash_duo.driver.execute_script(f"const el = document.activeElement; return !!({predicate_js});"):
            return
    raise AssertionError(f"{predicate_js} never received the keyboard focus in {limit} TABs")


def test_a11y002_event_tabs_and_analyze_work_by_keyboard(dash_duo, app):
    """Every event-source tab is reachable with TAB and opens with ENTER; Analyze runs with ENTER."""
    dash_duo.start_server(app)
    set_viewport(dash_duo.driver, *WIDTHS["desktop"])
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    tab_ids = [element.get_attribute("id") for element in
               dash_duo.find_elements(f"#{ids.EVENT_SOURCE_TABS} [role=tab]")]
    assert len(tab_ids) == 3 and len(set(tab_ids)) == 3 and all(tab_ids), tab_ids
    for page_id in tab_ids:
        assert len(dash_duo.find_elements(f"[id='{page_id}']")) == 1, f"duplicate id {page_id}"
    def open_tab(title: str) -> None:
        _focus_by_tab(dash_duo, f"el.getAttribute('role') === 'tab' && el.textContent.trim() === '{title}'")
        press(dash_duo, Keys.ENTER)
        dash_duo.wait_for_text_to_equal(f"#{ids.EVENT_SOURCE_TABS} .nav-link.active", title, timeout=TIMEOUT)
        selected = dash_duo.find_elements(f"#{ids.EVENT_SOURCE_TABS} [aria-selected=true]")
        assert [element.text for element in selected] == [title]
        panel = dash_duo.find_element(f"[role=tabpanel][aria-labelledby='{selected[0].get_attribute('id')}']")
        assert panel.is_displayed()

    for title in ("Simulate", "Upload", "Sample"):
        open_tab(title)
    # arrow keys move between the tabs and open them (WAI-ARIA tabs pattern)
    for key, title in ((Keys.ARROW_RIGHT, "Simulate"), (Keys.ARROW_RIGHT, "Upload"), (Keys.ARROW_LEFT, "Simulate")):
        press(dash_duo, key)
        dash_duo.wait_for_text_to_equal(f"#{ids.EVENT_SOURCE_TABS} .nav-link.active", title, timeout=TIMEOUT)
        assert dash_duo.driver.execute_script("return document.activeElement.textContent.trim();") == title
    # the controls inside the panels take the focus too: simulation seed, drop zone's file input, channels
    open_tab("Simulate")
    _focus_by_tab(dash_duo, f"el.id === '{ids.SIM_SEED}'")
    open_tab("Upload")
    _focus_by_tab(dash_duo, f"el.closest('#{ids.UPLOAD}') !== null && el.type === 'file'")
    _focus_by_tab(dash_duo, f"el.id === '{ids.UPLOAD_CHANNELS}'")
    _focus_by_tab(dash_duo, f"el.id === '{ids.UPLOAD_RATED_CURRENT}'")
    open_tab("Simulate")
    _focus_by_tab(dash_duo, f"el.id === '{ids.ANALYZE_BUTTON}'")
    press(dash_duo, Keys.ENTER)
    dash_duo.wait_for_element(f"#{ids.CONFIDENCE_VALUE}", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.LATEST_TABLE} tbody tr td:last-child", "simulated", timeout=TIMEOUT)
    assert dash_duo.get_logs() == []


def test_a11y003_phone_navbar_collapses_and_result_scrolls_into_view(dash_duo, app):
    """At 390 px the nav links hide behind the toggler, the History grid fits, and after Analyze the
    verdict is on screen."""
    dash_duo.start_server(app)
    set_viewport(dash_duo.driver, *WIDTHS["phone"])
    dash_duo.driver.get(dash_duo.server_url)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    toggler = dash_duo.wait_for_element(f"#{ids.NAVBAR_TOGGLER}", timeout=TIMEOUT)
    assert toggler.is_displayed()
    link = dash_duo.find_element(f"#{ids.NAV_LINK_PREFIX}history")
    assert not link.is_displayed()
    navbar_height = dash_duo.driver.execute_script(
        f"return document.getElementById('{ids.NAVBAR}').getBoundingClientRect().height;")
    assert navbar_height <= 0.1 * WIDTHS["phone"][1], navbar_height
    toggler.click()
    until(link.is_displayed, timeout=TIMEOUT)
    assert toggler.get_attribute("aria-expanded") == "true"
    link.click()
    dash_duo.wait_for_element(f"#{ids.HISTORY_GRID}", timeout=TIMEOUT)
    until(lambda: not dash_duo.find_element(f"#{ids.NAV_LINK_PREFIX}analyze").is_displayed(),
          timeout=TIMEOUT)  # following a link closes the menu
    # the History grid keeps its main columns and wraps them to the phone's width
    dash_duo.wait_for_element(f"#{ids.HISTORY_GRID} .ag-header-cell[col-id=label]", timeout=TIMEOUT)
    until(lambda: dash_duo.find_elements(f"#{ids.HISTORY_GRID} .ag-header-cell[col-id=sender]") == [], timeout=TIMEOUT)
    until(lambda: dash_duo.driver.execute_script(
        "const v = document.querySelector('#history-grid .ag-center-cols-viewport');"
        "return v.scrollWidth <= v.clientWidth + 1;"), timeout=TIMEOUT)
    dash_duo.driver.get(dash_duo.server_url)
    _analyze_once(dash_duo)

    def headline_on_screen() -> bool:
        top, bottom, height = dash_duo.driver.execute_script(
            f"const r = document.getElementById('{ids.RESULT_HEADLINE}').getBoundingClientRect();"
            "return [r.top, r.bottom, window.innerHeight];")
        return top >= 0 and top < height * 0.6

    until(headline_on_screen, timeout=TIMEOUT)
    assert dash_duo.get_logs() == []


def _cy(dash_duo, graph_id: str, script: str):
    """Run `script` (a JS function body with `cy`, the graph's cytoscape core) and return its value."""
    dash_duo.wait_for_element(f"#{graph_id} canvas", timeout=TIMEOUT)
    return dash_duo.driver.execute_script(
        f"const cy = document.getElementById('{graph_id}')._cyreg.cy; {script}")


def test_a11y004_desktop_looks_readable_microgrid_line_loadings_and_a_history_grid_that_fits(dash_duo, app):
    """At 1440 px: microgrid captions drawn at >= 11.5 px, the Network graph's lines captioned with their
    loading, no chart mode bar, and the History grid's columns fit without sideways scrolling."""
    dash_duo.start_server(app)
    set_viewport(dash_duo.driver, *WIDTHS["desktop"])
    _open(dash_duo, "/", PAGES[0][1])
    _analyze_once(dash_duo)
    until(lambda: _cy(dash_duo, ids.MICROGRID, "return cy.zoom();") < 1.0, timeout=TIMEOUT)  # fitted
    caption_px = _cy(dash_duo, ids.MICROGRID, "return cy.zoom() * cy.nodes()[0].numericStyle('font-size');")
    assert caption_px >= 11.5, caption_px
    assert dash_duo.find_elements(".modebar") == []  # no toolbar over the waveform's legend
    _open(dash_duo, "/network", PAGES[1][1])
    shown = _cy(dash_duo, ids.NETWORK_GRAPH,
                "return cy.edges().filter(e => e.data('label')).map(e => [e.style('target-label'),"
                " cy.zoom() * e.numericStyle('font-size')]);")
    assert len(shown) >= 8 and all(text.endswith("%") and px >= 11 for text, px in shown), shown
    caption_px = _cy(dash_duo, ids.NETWORK_GRAPH, "return cy.zoom() * cy.nodes()[0].numericStyle('font-size');")
    assert caption_px >= 11.5, caption_px
    _open(dash_duo, "/history", PAGES[2][1])
    until(lambda: dash_duo.driver.execute_script(
        "const v = document.querySelector('#history-grid .ag-center-cols-viewport');"
        "return v.scrollWidth <= v.clientWidth + 1;"), timeout=TIMEOUT)
    assert dash_duo.get_logs() == []
