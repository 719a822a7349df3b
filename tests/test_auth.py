"""app/auth.py: login, sessions, roles, API tokens, CSRF and the modes (issue 14)."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask

from app import create_app
from app.auth import ACCOUNTS_KEY, LOCAL_USER, callback_needs_operator, is_loopback_bind, resolve_mode
from app.settings import Settings
from components import ids
from services import accounts as accounts_module
from services.analysis import EXTENSION_KEY

PASSWORD = "correct horse battery"
GOOD = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
PUBLIC = {"/login", "/api/health", "/_favicon.ico", "/favicon.ico"}


@pytest.fixture(scope="module")
def login_app(artifacts_copy, tmp_path_factory):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path_factory.mktemp("auth"),
                                       auth="login"))
    accounts = app.server.extensions[ACCOUNTS_KEY]
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        accounts.add_user(name, role, PASSWORD)
    yield app
    app.server.extensions[EXTENSION_KEY].store.dispose()


def _csrf(client, path="/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(client, name, password=PASSWORD, next_page=None):
    data = {"name": name, "password": password, "csrf_token": _csrf(client)}
    if next_page:
        data["next"] = next_page
    return client.post("/login", data=data)


def _logged_in(app, name):
    client = app.server.test_client()
    assert _login(client, name).status_code == 302
    return client


def _csrf_header(client) -> dict[str, str]:
    client.get("/")  # the page hands the token over as the cookie Dash's renderer reads
    return {"X-CSRFToken": client.get_cookie("_csrf_token").value}


def _sample(client, headers=None) -> str:
    return client.get("/api/samples", headers=headers).get_json()["samples"][0]["filename"]


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda match: "x.js" if match.group(1) == "path" else "1", rule)


# -- modes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("bind", "loopback"), [("127.0.0.1:8050", True), ("[::1]:8050", True),
                                                ("localhost:80", True), ("0.0.0.0:8050", False),
                                                ("10.1.2.3:8050", False), ("unix:/run/gem.sock", False)])
def test_loopback_binds_are_recognised(bind, loopback):
    assert is_loopback_bind(bind) is loopback


def test_the_mode_follows_the_bind_unless_gem_auth_says_otherwise():
    assert resolve_mode(Settings()) == "single-user"
    assert resolve_mode(Settings(host="0.0.0.0")) == "login"
    assert resolve_mode(Settings(bind="0.0.0.0:8000")) == "login"
    assert resolve_mode(Settings(host="0.0.0.0", auth="off")) == "off"
    assert resolve_mode(Settings(auth="login")) == "login"
    assert resolve_mode(Settings(auth="off"), portal_auth=lambda: None) == "portal"


def test_a_non_loopback_bind_requires_login_and_says_so(artifacts_copy, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="app.auth"):
        app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, host="0.0.0.0"))
    assert any("login required" in record.getMessage() for record in caplog.records)
    client = app.server.test_client()
    assert client.get("/api/samples").status_code == 401
    assert client.get("/").status_code == 302
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_gem_auth_off_is_open_and_warns(artifacts_copy, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="app.auth"):
        app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, host="0.0.0.0",
                                           auth="off"))
    assert any("GEM_AUTH=off" in record.getMessage() for record in caplog.records)
    client = app.server.test_client()
    assert client.get("/api/samples", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_single_user_mode_opens_to_this_machine_only_not_through_a_proxy(artifacts_copy, tmp_path):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
    client = app.server.test_client()
    assert client.get("/api/samples").status_code == 200
    assert client.get("/api/samples", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/api/samples", environ_base={"REMOTE_ADDR": "192.168.1.20"}).status_code == 401
    assert client.get("/api/samples", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
    assert client.get("/history", headers={"Forwarded": "for=203.0.113.9"}).status_code == 302
    assert client.get("/api/samples", headers={"Host": "127.0.0.1:8050"}).status_code == 200
    assert client.get("/api/samples", headers={"Host": "[::1]:8050"}).status_code == 200
    assert client.get("/api/samples", headers={"Host": "rebound.evil.example:8050"}).status_code == 401
    assert client.get_cookie("gem_session") is None  # the local browser gets no session at all
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    app.server.extensions[EXTENSION_KEY].store.dispose()


# -- anonymous -------------------------------------------------------------------------------------
def test_anonymous_gets_401_on_the_api_and_a_login_redirect_on_pages_everywhere(login_app):
    client = login_app.server.test_client()
    checked = 0
    for rule in login_app.server.url_map.iter_rules():
        path = _concrete(rule.rule)
        if path in PUBLIC or path.startswith(("/assets/", "/_dash-component-suites/", "/static/", "/logout")):
            continue
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"OPTIONS", "HEAD"})[0]
        response = client.open(path, method=method)
        api = path.startswith(("/predict", "/api/", "/_dash-", "/_reload-hash"))
        if api or method != "GET":
            assert response.status_code == 401, (path, method, response.status_code)
            assert "error" in response.get_json() and response.headers["WWW-Authenticate"].startswith("Bearer")
        else:
            assert response.status_code == 302, (path, response.status_code)
            assert response.headers["Location"].startswith("/login?next=")
        checked += 1
    assert checked >= 15
    for path in ("/live", "/history", "/analysis/1", "/no-such-page"):
        assert client.get(path).status_code == 302
    assert client.get("/login").status_code == 200
    assert client.get("/api/health").status_code == 200
    assert client.get("/assets/dashboard.css").status_code == 200


# -- login, sessions, cookies ----------------------------------------------------------------------
def test_login_sets_a_hardened_session_cookie_and_returns_to_the_page(login_app):
    client = login_app.server.test_client()
    response = _login(client, "vera", next_page="/history?page=2")
    assert response.status_code == 302 and response.headers["Location"] == "/history?page=2"
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("gem_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/api/samples").status_code == 200 and client.get("/history").status_code == 200


def test_secure_cookies_setting_marks_the_session_cookie_secure(artifacts_copy, tmp_path):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, auth="login",
                                       secure_cookies=True, secret_key="k" * 40))
    app.server.extensions[ACCOUNTS_KEY].add_user("vera", "viewer", PASSWORD)
    client = app.server.test_client()
    response = _login(client, "vera")
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("gem_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert app.server.secret_key == "k" * 40 and not (tmp_path / "secret_key").exists()
    app.server.extensions[EXTENSION_KEY].store.dispose()


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x", "/\\evil.example"])
def test_login_never_redirects_to_another_site(login_app, target):
    response = _login(login_app.server.test_client(), "vera", next_page=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_wrong_passwords_and_unknown_users_are_refused_without_saying_which(login_app):
    client = login_app.server.test_client()
    wrong = _login(client, "vera", "not the password")
    unknown = _login(client, "nobody-here", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password" in wrong.get_data(as_text=True) and PASSWORD not in unknown.get_data(as_text=True)
    assert client.get("/api/samples").status_code == 401


def test_repeated_failures_lock_the_login(artifacts_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(accounts_module, "MAX_FAILURES", 3)
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, auth="login"))
    app.server.extensions[ACCOUNTS_KEY].add_user("vera", "viewer", PASSWORD)
    client = app.server.test_client()
    for _ in range(3):
        assert _login(client, "vera", "not the password").status_code == 401
    locked = _login(client, "vera")  # the right password, too late
    assert locked.status_code == 429 and "Too many failed attempts" in locked.get_data(as_text=True)
    assert client.get("/api/samples").status_code == 401
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_login_makes_a_new_session_so_a_planted_one_is_worthless(login_app):
    attacker = login_app.server.test_client()
    _csrf(attacker)  # the attacker gets an anonymous session (and its CSRF token)
    planted = attacker.get_cookie("gem_session").value
    victim = login_app.server.test_client()
    victim.set_cookie("gem_session", planted)  # fixed onto the victim's browser
    assert _login(victim, "otto").status_code == 302
    assert victim.get_cookie("gem_session").value != planted
    assert attacker.get("/api/samples").status_code == 401  # the planted session never logged in


def test_logout_needs_its_form_token_and_ends_the_session(login_app):
    client = _logged_in(login_app, "vera")
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/api/samples").status_code == 200
    token = _csrf(client, "/logout")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/samples").status_code == 401


def test_the_login_form_refuses_a_post_without_its_token(login_app):
    client = login_app.server.test_client()
    response = client.post("/login", data={"name": "vera", "password": PASSWORD})
    assert response.status_code == 403 and client.get("/api/samples").status_code == 401


def test_a_removed_user_loses_the_session_at_once(artifacts_copy, tmp_path):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, auth="login"))
    accounts = app.server.extensions[ACCOUNTS_KEY]
    accounts.add_user("temp", "operator", PASSWORD)
    client = _logged_in(app, "temp")
    assert client.get("/api/samples").status_code == 200
    accounts.remove_user("temp")
    assert client.get("/api/samples").status_code == 401
    app.server.extensions[EXTENSION_KEY].store.dispose()


# -- CSRF ------------------------------------------------------------------------------------------
def test_state_changing_requests_with_a_session_need_the_csrf_token(login_app):
    client = _logged_in(login_app, "otto")
    body = {**GOOD, "sample_filename": _sample(client)}
    refused = client.post("/api/records", json={"files": []})
    assert refused.status_code == 403 and "CSRF" in refused.get_json()["error"]
    wrong = client.post("/api/records", json={"files": []}, headers={"X-CSRFToken": "guess"})
    assert wrong.status_code == 403
    callback = client.post("/_dash-update-component", json={"output": "x.children"})
    assert callback.status_code == 403 and "CSRF" in callback.get_json()["error"]
    passed = client.post("/_dash-update-component", json={"output": "x.children"}, headers=_csrf_header(client))
    assert passed.status_code == 400  # past the CSRF check, refused as no callback of the page
    # the original front end's JSON /predict needs no token (a cross-site page cannot send JSON)
    assert client.post("/predict", json=body).status_code == 200


# -- roles -----------------------------------------------------------------------------------------
def test_a_viewer_reads_but_cannot_analyse_upload_or_acknowledge(login_app):
    client = _logged_in(login_app, "vera")
    headers = _csrf_header(client)
    rows = login_app.server.extensions[EXTENSION_KEY].store.count()
    assert client.get("/api/history").status_code == 200 and client.get("/live").status_code == 200
    sample = _sample(client)
    for path, kwargs in (("/predict", {"json": {**GOOD, "sample_filename": sample}}),
                         ("/api/predict-file", {"data": {"file": (b"x", "a.csv")}}),
                         ("/api/records", {"json": {}}),
                         ("/api/batches", {"data": {"archive": (b"x", "a.zip")}}),
                         ("/api/alarms/1/ack", {"json": {"by": "vera"}}),
                         ("/api/alarms/ack", {"json": {"by": "vera", "up_to_id": 1}})):
        response = client.post(path, headers=headers, **kwargs)
        assert response.status_code == 403, path
        assert "role (viewer)" in response.get_json()["error"]
    assert login_app.server.extensions[EXTENSION_KEY].store.count() == rows


def _callback_body(app, output_id: str, changed: list[str]) -> dict:
    output = next(key for key in app.callback_map if output_id in key)
    callback = app.callback_map[output]
    def item(declared):
        return {"id": declared["id"], "property": declared["property"], "value": None}
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1].split("@")[0]}
               for part in output.strip(".").split("...")] if output.startswith("..") else {
        "id": output.rsplit(".", 1)[0], "property": output.rsplit(".", 1)[1]}
    return {"output": output, "outputs": outputs, "inputs": [item(d) for d in callback["inputs"]],
            "state": [item(d) for d in callback.get("state", [])], "changedPropIds": changed}


def test_the_callback_dispatch_refuses_a_viewers_analysis_but_not_a_view_change(login_app):
    analyze = _callback_body(login_app, ids.ANALYZE_ALERT, [f"{ids.ANALYZE_BUTTON}.n_clicks"])
    assert callback_needs_operator(analyze, login_app.callback_map)
    assert callback_needs_operator({**analyze, "changedPropIds": []}, login_app.callback_map)
    assert callback_needs_operator({**analyze, "changedPropIds": [f"{ids.UPLOAD}.contents"]}, login_app.callback_map)
    assert not callback_needs_operator({**analyze, "changedPropIds": [f"{ids.SENDER}.value"]}, login_app.callback_map)
    ack = _callback_body(login_app, ids.LIVE_ACK_STATUS, ['{"alarm":3,"type":"live-ack"}.n_clicks'])
    assert callback_needs_operator(ack, login_app.callback_map)
    viewer = _logged_in(login_app, "vera")
    rows = login_app.server.extensions[EXTENSION_KEY].store.count()
    refused = viewer.post("/_dash-update-component", json=analyze, headers=_csrf_header(viewer))
    assert refused.status_code == 403 and "role (viewer)" in refused.get_json()["error"]
    assert login_app.server.extensions[EXTENSION_KEY].store.count() == rows


def test_admin_pages_need_an_admin(login_app):
    assert _logged_in(login_app, "otto").get("/admin").status_code == 403
    assert _logged_in(login_app, "ada").get("/admin").status_code != 403


# -- tokens ----------------------------------------------------------------------------------------
def test_tokens_work_with_their_owners_role_and_revoked_ones_do_not(login_app):
    accounts = login_app.server.extensions[ACCOUNTS_KEY]
    client = login_app.server.test_client()
    token_id, token = accounts.create_token("otto", "test")
    bearer = {"Authorization": f"Bearer {token}"}
    sample = _sample(client, bearer)
    answer = client.post("/predict", json={**GOOD, "sample_filename": sample}, headers=bearer)
    assert answer.status_code == 200 and "predicted_label" in answer.get_json()
    assert client.get_cookie("gem_session") is None  # a script gets no session
    _, viewer_token = accounts.create_token("vera")
    refused = client.post("/predict", json={**GOOD, "sample_filename": sample},
                          headers={"Authorization": f"Bearer {viewer_token}"})
    assert refused.status_code == 403
    accounts.revoke_token(token_id)
    for headers in (bearer, {"Authorization": "Bearer gem_00000000_" + "A" * 43}, {"Authorization": "Bearer x"}):
        response = client.get("/api/samples", headers=headers)
        assert response.status_code == 401 and "token" in response.get_json()["error"]


def test_a_token_is_refused_even_in_single_user_mode_when_bad(artifacts_copy, tmp_path):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
    assert app.server.test_client().get("/api/samples", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert LOCAL_USER.can("admin")
    app.server.extensions[EXTENSION_KEY].store.dispose()


# -- portal ----------------------------------------------------------------------------------------
def test_a_portal_login_decides_who_uses_the_embedded_dashboard(artifacts_copy, tmp_path):
    portal = Flask("portal")
    portal.secret_key = "portal-secret"
    users = {"pat": "operator", "val": "viewer"}

    from flask import session

    @portal.route("/portal/login/<name>")
    def portal_login(name):
        session["portal_user"] = name
        return "welcome"

    @portal.route("/portal/home")
    def portal_home():
        return "portal home"

    def current():
        name = session.get("portal_user")
        return (name, users[name]) if name in users else None

    create_app(server=portal, url_base_pathname="/grid/", auth=current,
               settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, auth="off"))
    anonymous = portal.test_client()
    assert anonymous.get("/portal/home").status_code == 200  # the portal's own routes stay the portal's
    assert anonymous.get("/grid/").status_code == 401 and "Sign in to the portal" in anonymous.get(
        "/grid/").get_data(as_text=True)
    assert anonymous.get("/grid/api/history").status_code == 401
    assert anonymous.get("/grid/login").status_code == 404  # no second login
    assert anonymous.get("/grid/api/health").status_code == 200

    operator = portal.test_client()
    operator.get("/portal/login/pat")
    assert operator.get("/grid/").status_code == 200
    sample = operator.get("/grid/api/samples").get_json()["samples"][0]["filename"]
    assert operator.post("/grid/predict", json={**GOOD, "sample_filename": sample}).status_code == 200
    assert operator.post("/grid/api/records", json={}).status_code == 403  # the portal's cookie needs CSRF too
    operator.get("/grid/")
    headers = {"X-CSRFToken": operator.get_cookie("_csrf_token", path="/grid/").value}
    assert operator.post("/grid/api/records", json={}, headers=headers).status_code == 415  # past auth: body type

    viewer = portal.test_client()
    viewer.get("/portal/login/val")
    assert viewer.get("/grid/api/history").status_code == 200
    assert viewer.post("/grid/predict", json={**GOOD, "sample_filename": sample}).status_code == 403
    portal.extensions[EXTENSION_KEY].store.dispose()


# -- who did what ----------------------------------------------------------------------------------
def test_history_rows_record_who_asked_and_the_history_filters_by_user(login_app):
    operator = _logged_in(login_app, "otto")
    admin = _logged_in(login_app, "ada")
    sample = _sample(operator)
    mine = operator.post("/predict", json={**GOOD, "sample_filename": sample}).get_json()["analysis_id"]
    theirs = admin.post("/predict", json={**GOOD, "sample_filename": sample}).get_json()["analysis_id"]
    store = login_app.server.extensions[EXTENSION_KEY].store
    assert store.get(mine, include_waveform=False)["user"] == "otto"
    assert store.get(theirs, include_waveform=False)["user"] == "ada"
    own = operator.get("/api/history?mine=1").get_json()["items"]
    assert own and {row["user"] for row in own} == {"otto"} and mine in {row["id"] for row in own}
    by_name = operator.get("/api/history?user=ada").get_json()["items"]
    assert {row["id"] for row in by_name} >= {theirs} and {row["user"] for row in by_name} == {"ada"}


def test_without_login_rows_name_nobody(artifacts_copy, tmp_path):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
    client = app.server.test_client()
    answer = client.post("/predict", json={**GOOD, "sample_filename": _sample(client)}).get_json()
    assert app.server.extensions[EXTENSION_KEY].store.get(answer["analysis_id"], include_waveform=False)["user"] is None
    assert [row["id"] for row in client.get("/api/history?mine=1").get_json()["items"]] == [answer["analysis_id"]]
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_the_navbar_names_the_signed_in_user_with_a_sign_out_link_only_when_logged_in(login_app, artifacts_copy,
                                                                                       tmp_path):
    layout = _logged_in(login_app, "otto").get("/_dash-layout").get_data(as_text=True)
    assert ids.NAV_SIGN_OUT in layout and "otto \u00b7 Sign out" in layout and '"external_link":true' in layout
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
    assert ids.NAV_SIGN_OUT not in app.server.test_client().get("/_dash-layout").get_data(as_text=True)
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_the_admin_page_adds_users_and_creates_and_revokes_tokens(login_app):
    admin = _logged_in(login_app, "ada")
    page = admin.get("/admin")
    assert page.status_code == 200 and "otto" in page.get_data(as_text=True)
    token = _csrf(admin, "/admin")
    assert admin.post("/admin", data={"action": "add-user", "name": "newbie", "role": "viewer"}).status_code == 403
    added = admin.post("/admin", data={"action": "add-user", "name": "newbie", "role": "viewer", "csrf_token": token})
    password = re.search(r"Password, shown once: (\S+)</code>", added.get_data(as_text=True)).group(1)
    accounts = login_app.server.extensions[ACCOUNTS_KEY]
    assert accounts.authenticate("newbie", password, "admin-test") is not None
    created = admin.post("/admin", data={"action": "create-token", "owner": "newbie", "csrf_token": token})
    secret = re.search(r"shown once: (gem_\S+)</code>", created.get_data(as_text=True)).group(1)
    assert admin.get("/api/samples", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert secret not in admin.get("/admin").get_data(as_text=True)  # shown once, never listed
    token_id = secret.split("_")[1]
    admin.post("/admin", data={"action": "revoke-token", "token_id": token_id, "csrf_token": token})
    assert admin.get("/api/samples", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    refused = admin.post("/admin", data={"action": "add-user", "name": "bad name", "role": "viewer", "csrf_token": token})
    assert "alert-danger" in refused.get_data(as_text=True) and accounts.get_user("bad name") is None
    admin.post("/admin", data={"action": "remove-user", "name": "newbie", "csrf_token": token})
    assert accounts.get_user("newbie") is None
    assert _logged_in(login_app, "vera").post("/admin", data={"action": "remove-user", "name": "otto"}).status_code == 403
    assert accounts.get_user("otto") is not None


def test_the_history_pages_mine_button_filters_the_grid_by_the_signed_in_user(login_app):
    from callbacks.history import history_rows, toggle_mine

    operator = _logged_in(login_app, "otto")
    operator.post("/predict", json={**GOOD, "sample_filename": _sample(operator)})
    store = login_app.server.extensions[EXTENSION_KEY].store
    model = toggle_mine({"label": {"filterType": "text", "type": "contains", "filter": "a"}}, "otto")
    assert model["user"] == {"filterType": "text", "type": "equals", "filter": "otto"} and "label" in model
    response, _ = history_rows({"startRow": 0, "endRow": 100, "filterModel": {"user": model["user"]}}, store,
                               lambda number: f"/analysis/{number}")
    assert response["rowData"] and {row["user"] for row in response["rowData"]} == {"otto"}
    assert toggle_mine(model, "otto") == {"label": model["label"]}  # again: everyone's
    assert toggle_mine(None, None) == {"user": {"filterType": "text", "type": "blank"}}


def test_an_unreachable_accounts_database_is_a_clear_503_not_a_traceback(artifacts_copy, tmp_path):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, auth="login"))
    app.server.extensions[ACCOUNTS_KEY].add_user("vera", "viewer", PASSWORD)
    client = _logged_in(app, "vera")
    app.server.extensions[ACCOUNTS_KEY].drop()  # every lookup now fails in the database
    response = client.get("/api/samples")
    assert response.status_code == 503 and "accounts database" in response.get_json()["error"]
    login = _login(app.server.test_client(), "vera")
    assert login.status_code == 503 and "Traceback" not in login.get_data(as_text=True)
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_a_viewers_pages_hide_the_controls_that_write(login_app):
    viewer = _logged_in(login_app, "vera").get("/_dash-layout").get_json()
    operator = _logged_in(login_app, "otto").get("/_dash-layout").get_json()
    assert viewer["props"]["className"] == "read-only" and operator["props"].get("className") is None
    css = login_app.server.test_client().get("/assets/dashboard.css").get_data(as_text=True)
    for selector in (f"#{ids.ANALYZE_BUTTON}", f"#{ids.UPLOAD}", f'"type":"{ids.LIVE_ACK}"', f"#{ids.BATCH_UPLOAD}"):
        assert selector in css.split(".read-only", 1)[1]


def test_the_history_grid_shows_the_user_column_to_signed_in_users_only():
    from components.tables import history_grid

    def user_column(grid):
        return next(column for column in grid.columnDefs if column["field"] == "user")

    assert user_column(history_grid())["hide"] is True
    assert user_column(history_grid(show_user=True))["hide"] is False


def test_the_generated_secret_key_is_made_once_and_shared(tmp_path):
    from app.auth import load_secret_key

    settings = Settings(instance_dir=tmp_path)
    first = load_secret_key(settings)
    assert len(first) == 64 and load_secret_key(settings) == first  # a second worker reads the same key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_secret_key(Settings(instance_dir=tmp_path, secret_key="from-the-environment")) == "from-the-environment"


def test_a_script_with_a_token_gets_no_session_or_csrf_cookie_from_a_page(login_app):
    _, token = login_app.server.extensions[ACCOUNTS_KEY].create_token("vera")
    client = login_app.server.test_client()
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get_cookie("_csrf_token") is None and client.get_cookie("gem_session") is None
