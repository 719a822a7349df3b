"""Every component id of the dashboard, in one place so that layouts, callbacks and tests agree.

Ids are namespaced by page (`analyze-`, `history-`, `analysis-`, `model-`, `network-`) because Dash
pages share one DOM id space across the whole app.
"""

from __future__ import annotations

# --- shell -----------------------------------------------------------------------------------
NAVBAR = "navbar"
NAV_LINK_PREFIX = "nav-link-"  # + page module short name, e.g. "nav-link-analyze"
NAVBAR_TOGGLER = "navbar-toggler"  # the phone-width menu button
NAVBAR_COLLAPSE = "navbar-collapse"  # the links it shows and hides
PAGE_HEADING = "page-heading"  # each page's one <h1>

# --- Analyze page ("/") ----------------------------------------------------------------------
ANALYZE_PAGE = "analyze-page"
ANALYZE_MODEL_BANNER = "analyze-model-banner"
SENDER = "analyze-sender"
RECEIVER = "analyze-receiver"
TRANSFER_KW = "analyze-transfer-kw"
EVENT_SOURCE_TABS = "analyze-event-source"  # the role="tablist" of the Sample / Simulate / Upload tabs
EVENT_SOURCE = "analyze-event-source-value"  # dcc.Store: the open tab (one of SOURCE_*), what Analyze uses
EVENT_SOURCE_PANE_SUFFIX = "-pane"  # the tab panel of tab SOURCE_X has id SOURCE_X + this suffix
SOURCE_SAMPLE = "tab-sample"
SOURCE_SIMULATE = "tab-simulate"
SOURCE_UPLOAD = "tab-upload"
SAMPLE = "analyze-sample"
SIM_LABEL = "analyze-sim-label"
SIM_SEED = "analyze-sim-seed"
SIM_PARAMS = "analyze-sim-params"  # container of the parameter inputs
SIM_PARAM_TYPE = "analyze-sim-param"  # pattern-matching type: {"type": SIM_PARAM_TYPE, "name": ...}
UPLOAD = "analyze-upload"
UPLOAD_STATUS = "analyze-upload-status"
UPLOAD_STORE = "analyze-upload-store"  # the last good upload: {"filename", "files", "waveform", "channels", "comtrade"}
UPLOAD_RATED_CURRENT = "analyze-upload-rated-current"  # the recording unit's rated current (A), optional
UPLOAD_UNIT = "analyze-upload-unit"  # unit of a .npy/CSV window: window (default), A, kA, pu
RELAY_CONNECTION = "analyze-relay-connection"  # how the relay compares the currents, when known (optional)
RESULT_CONNECTION = "result-relay-connection"  # the stated relay connection an answer was read through
UPLOAD_CHANNELS = "analyze-upload-channels"  # optional COMTRADE channels, e.g. "IdA, IdB, IdC" or "7, 8, 9"
ANALYZE_BUTTON = "analyze-button"
ANALYZE_ALERT = "analyze-alert"
ANALYZE_RESULT_STORE = "analyze-result-store"  # the last analysis shown (dict from services.analysis)
ANALYZE_SPINNER = "analyze-spinner"
PLOTLY_PRELOAD = "analyze-plotly-preload"  # hidden; gets a chart after the first render so Plotly loads early
MICROGRID = "analyze-microgrid"
MICROGRID_CAPTION = "analyze-microgrid-caption"  # text summary of what the graph highlights
WAVEFORM = "analyze-waveform"  # the dcc.Graph, created inside WAVEFORM_CONTAINER after the first analysis
WAVEFORM_CONTAINER = "analyze-waveform-container"
WAVEFORM_VIEW = "analyze-waveform-view"  # radio: "raw" | "rms"
CONFIDENCE = "analyze-confidence"  # card body container
DESCRIPTION = "analyze-description"
IMPACT = "analyze-impact"
LATEST_TABLE = "analyze-latest"  # container of the latest-analyses table
RESULT_HEADLINE = "analyze-headline"
RESULT_PERMALINK = "result-permalink"  # link to /analysis/<id> of the analysis shown
RESULT_LEVELS = "result-levels"  # the three rows category / phases & kind / equipment of the verdict

# inside the confidence / impact / description bodies (shared by Analyze and the analysis page)
CONFIDENCE_VALUE = "confidence-value"
CONFIDENCE_LABEL = "confidence-label"
TOP5_GRAPH = "confidence-top5"
MARGINALS_GRAPH = "confidence-marginals"
UNKNOWN_WARNING = "confidence-unknown"
IMPACT_SEVERITY = "impact-severity"
IMPACT_EVENT_TYPE = "impact-event-type"
IMPACT_TRANSFER_STATUS = "impact-transfer-status"
IMPACT_ENERGY = "impact-energy-not-delivered"
IMPACT_ACTIONS = "impact-actions"
LATEST_ROW_CLASS = "latest-row"  # className of each row in the latest-analyses table

# --- Live page ("/live", issue 13) and the navbar's alarm badge ------------------------------------
LIVE_PAGE = "live-page"
LIVE_STATUS = "live-status"  # what feeds the page (watched folder, /api/records) and the engine
LIVE_INTERVAL = "live-interval"  # dcc.Interval of the poll
LIVE_TICK = "live-tick"  # dcc.Store: the interval's ticks while the tab is visible (clientside gate)
LIVE_SEEN = "live-seen"  # dcc.Store: fingerprint of what is on screen
LIVE_ACK_DONE = "live-ack-done"  # dcc.Store: bumped by each acknowledgement
LIVE_EVENTS = "live-events"  # container of the events table
LIVE_EMPTY = "live-empty"  # "waiting for records"
LIVE_EVENT_ROW = "live-event-row"  # pattern-matching type: {"type": LIVE_EVENT_ROW, "job": job_id}
LIVE_ALARMS = "live-alarms"  # container of the alarm list
LIVE_ALARM_ITEM = "live-alarm"  # pattern-matching type: {"type": LIVE_ALARM_ITEM, "alarm": id}
LIVE_ACK = "live-ack"  # pattern-matching type of the Acknowledge buttons: {"type": LIVE_ACK, "alarm": id}
LIVE_ACK_BY = "live-ack-by"  # pattern-matching type: who and when, once acknowledged
LIVE_ACK_STATUS = "live-ack-status"
LIVE_ALARM_SEVERITIES = "live-alarm-severities"  # checklist: the severities the list shows
LIVE_OPERATOR = "live-operator"  # who acknowledges (kept in the browser's local storage)
NAV_SIGN_OUT = "nav-sign-out"  # the signed-in user's name, a link to the sign-out page (issue 14)
NAV_ALARMS = "nav-alarms"  # the navbar's link to the Live page with the count
NAV_ALARM_COUNT = "nav-alarm-count"  # its badge: unacknowledged alarms
NAV_ALARM_INTERVAL = "nav-alarm-interval"
NAV_ALARM_TICK = "nav-alarm-tick"  # dcc.Store: ticks while the tab is visible

# --- History page ("/history") ---------------------------------------------------------------
HISTORY_PAGE = "history-page"
HISTORY_GRID = "history-grid"
HISTORY_MINE = "history-mine"  # toggles the grid's User filter to the signed-in user's analyses (issue 14)
HISTORY_CSV_LINK = "history-csv"
HISTORY_TOTAL = "history-total"
#: the "history unavailable" / "not saved to the history" warning (pages and Analyze results)
HISTORY_UNAVAILABLE = "history-unavailable"
#: where the History page shows that warning (filled by the grid's callback)
HISTORY_NOTICE = "history-notice"

# --- Analysis page ("/analysis/<analysis_id>") -----------------------------------------------
ANALYSIS_PAGE = "analysis-page"
ANALYSIS_NOT_FOUND = "analysis-not-found"
NOT_FOUND_PAGE = "not-found-page"
ANALYSIS_HEADER = "analysis-header"
ANALYSIS_RECORDING = "analysis-recording"  # the COMTRADE record an uploaded analysis came from
ANALYSIS_MICROGRID = "analysis-microgrid"
ANALYSIS_MICROGRID_CAPTION = "analysis-microgrid-caption"
ANALYSIS_WAVEFORM = "analysis-waveform"
ANALYSIS_WAVEFORM_VIEW = "analysis-waveform-view"
ANALYSIS_WAVEFORM_STORE = "analysis-waveform-store"
ANALYSIS_CONFIDENCE = "analysis-confidence"
ANALYSIS_IMPACT = "analysis-impact"
ANALYSIS_DESCRIPTION = "analysis-description"

# --- Model page ("/model") -------------------------------------------------------------------
MODEL_PAGE = "model-page"
MODEL_BANNER = "model-banner"
MODEL_METRICS = "model-metrics"
MODEL_RECALL = "model-recall"
MODEL_CONFUSION = "model-confusion"
MODEL_CALIBRATION = "model-calibration"
#: which windows the reliability diagram was measured on, or why there is none
MODEL_CALIBRATION_NOTE = "model-calibration-note"
MODEL_TRAINING_DATA = "model-training-data"
MODEL_ROBUSTNESS = "model-robustness"
MODEL_FINGERPRINT = "model-fingerprint"
MODEL_LEVELS_REPORT = "model-levels-report"  # the levels report: simulator / shift set / independent transients
MODEL_STATED_CONNECTION = "model-stated-connection"  # levels with and without a stated relay connection

# --- Network page ("/network") ---------------------------------------------------------------
NETWORK_PAGE = "network-page"
NETWORK_GRAPH = "network-graph"
NETWORK_SENDER = "network-sender"
NETWORK_RECEIVER = "network-receiver"
NETWORK_KW = "network-kw"
NETWORK_SUMMARY = "network-summary"
NETWORK_PEERS = "network-peers"
NETWORK_BUSES = "network-buses"
NETWORK_LINES = "network-lines"
NETWORK_PRICE = "network-price"
NETWORK_ALERT = "network-alert"

# --- shared ------------------------------------------------------------------------------------
MODEL_STATUS_BANNER_CLASS = "model-status-banner"

# --- signal analytics card (issue 15): on the Analyze page and on /analysis/<id> ------------------
#: each page's card has ids `<prefix><suffix>`: `analytics_id(ANALYZE_ANALYTICS, ANALYTICS_SLIDER)`
ANALYZE_ANALYTICS = "analyze-analytics"
ANALYSIS_ANALYTICS = "analysis-analytics"
ANALYTICS_SLIDER = "-cycle"  # dcc.Slider: the one-cycle window shown (index into the analytics' windows)
ANALYTICS_CYCLE_TEXT = "-cycle-text"  # which window that is, in ms
ANALYTICS_SPECTRUM = "-spectrum"
ANALYTICS_PHASORS = "-phasors"
ANALYTICS_SEQUENCE = "-sequence"
ANALYTICS_RMS = "-rms"
ANALYTICS_TABLE = "-key-figures"
ANALYTICS_CSV_BUTTON = "-csv-button"
ANALYTICS_CSV = "-csv"  # dcc.Download
ANALYTICS_PNG_BUTTON = "-png-button"  # downloads the four figures as PNG (Plotly.downloadImage)
ANALYTICS_PNG_DONE = "-png-done"  # dcc.Store the clientside download writes (a callback needs an output)


def analytics_id(prefix: str, suffix: str) -> str:
    """The id of one part of a page's analytics card."""
    return prefix + suffix

# --- Compare page ("/compare?ids=1,2,3") and its entry points (issue 15) -------------------------
COMPARE_PAGE = "compare-page"
COMPARE_WAVEFORMS = "compare-waveforms"  # the waveforms overlaid on inception, one row per phase
COMPARE_TABLE = "compare-table"  # labels, confidences and key figures
COMPARE_ALERT = "compare-alert"
COMPARE_STORE = "compare-store"  # the table's rows, for the CSV
COMPARE_CSV_BUTTON = "compare-csv-button"
COMPARE_CSV = "compare-csv"  # dcc.Download
HISTORY_COMPARE = "history-compare"  # link to /compare with the grid's selected rows
ANALYSIS_COMPARE_WITH = "analysis-compare-with"  # text input: the ids to compare this analysis with
ANALYSIS_COMPARE_LINK = "analysis-compare-link"

# --- Batch page ("/batch"): an archive or an allowed server folder analysed at once (issue 13) ----
BATCH_PAGE = "batch-page"
BATCH_UPLOAD = "batch-upload"  # dcc.Upload of one zip / tar / tar.gz archive
BATCH_FOLDER = "batch-folder"  # dcc.Dropdown of the allowed server folders (GEM_BATCH_ROOTS)
BATCH_FOLDER_START = "batch-folder-start"
BATCH_RELAY_CONNECTION = "batch-relay-connection"  # the relay connection every record of a batch is read through
BATCH_MESSAGE = "batch-message"  # what was taken, or why not
BATCH_STORE = "batch-store"  # dcc.Store: {"batch_id", "name", "total"} of the batch being run
BATCH_PROGRESS = "batch-progress"  # dbc.Progress
BATCH_PROGRESS_TEXT = "batch-progress-text"  # records done, records/s, time left
BATCH_CANCEL = "batch-cancel"
BATCH_RESULT = "batch-result"  # summary cards, results grid, rejected list, CSV link
BATCH_SUMMARY = "batch-summary"
BATCH_GRID = "batch-grid"
BATCH_REJECTED = "batch-rejected"
BATCH_CSV_LINK = "batch-csv-link"
