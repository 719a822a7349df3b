"""Who may use the app, and as whom (issue 14): sessions, API tokens, roles, CSRF, portal login.

`install_auth(app, settings, prefix, portal_auth=..., own_server=...)` puts one check before every
request under our prefix (the portal's own routes are left alone). The mode:

- `single-user` (the default of `python -m app` on a loopback bind, GEM_AUTH unset; gunicorn.conf.py sets `login`):
  a browser of this machine talking straight to the loopback port acts as the local admin with no
  login, so the README's first command is one command to a working dashboard. A request that came
  through a proxy (`X-Forwarded-For` / `Forwarded`) or from another address is not "this
  machine's browser": it must log in (or send a token) as in `login` mode, and so must a request
  whose Host is not a loopback name or address (a page of another name resolving to 127.0.0.1: DNS
  rebinding).
- `login` (GEM_AUTH=login, and the default on any other bind): accounts of services/accounts.py.
- `off` (GEM_AUTH=off): open to whoever reaches the port, as before issue 14; a warning at start.
- `portal` (`create_app(..., auth=callable)`): the callable returns the portal's current user
  (`(name, role)`, an object with `.name`/`.role`, or None); our pages and API use it, and an
  anonymous visitor gets 401 everywhere (no login page of ours: the portal has its own).

Who a request acts for: an `Authorization: Bearer gem_...` token (a bad or revoked one is 401 at
once), else the portal's user, else the session's user (looked up again each request, so a removed
user or a changed role takes effect at once), else the local admin in single-user mode. Anonymous
requests get 401 JSON on the API and Dash's endpoints, a redirect to the login page for a page;
the login page, `api/health` and static assets need nobody.

Roles (services.accounts.ROLES): a viewer reads pages and history; writing (any POST/PUT/PATCH/DELETE
of the API: `/predict`, `/api/predict-file`, `/api/records`, `/api/batches`, acknowledging alarms)
needs an operator; `admin` pages need an admin. Dash callbacks are checked before dispatch:
a callback request changed by one of `OPERATOR_INPUTS` (the Analyze button, the uploads, an alarm's
acknowledge button, the Batch page's start and cancel) needs an operator, whatever the page showed.

CSRF: a state-changing request authenticated by a cookie (our session or the portal's) must carry
`X-CSRFToken` equal to the token kept in the session. The page gets it as the `_csrf_token` cookie
(not HttpOnly), which Dash's renderer sends back as that header on every callback request by
itself (no script of ours); the login and logout forms carry it as a field. Exempt: `POST /predict` with `application/json`, which the
original front end sends without a token; a cross-site page cannot send that type without a CORS
preflight, which app/security.py refuses for any origin not listed, and the session cookie is
SameSite=Lax besides. Bearer-token requests carry no ambient credential and need no token.
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import dash
import orjson
from flask import Flask, Response, g, redirect, request, session
from sqlalchemy.exc import SQLAlchemyError

from app.settings import Settings
from components import ids
from services.accounts import ROLES, AccountError, AccountStore, User, check_role, generate_password
from services.analysis import EXTENSION_KEY

log = logging.getLogger(__name__)

ACCOUNTS_KEY = "grid_event_monitor_accounts"
MODE_KEY = "grid_event_monitor_auth_mode"
LOCAL_USER = User("local", "admin")
OPEN_USER = User("anonymous", "admin")
CSRF_COOKIE = "_csrf_token"  # the cookie Dash's renderer reads, sending it back as X-CSRFToken
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrf_token"
SESSION_USER = "gem_user"
SESSION_CSRF = "gem_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: paths (relative to the prefix) nobody needs to be logged in for
PUBLIC_PATHS = frozenset({"login", "api/health", "_favicon.ico", "favicon.ico"})
PUBLIC_PREFIXES = ("assets/", "_dash-component-suites/")
#: pages that need an admin
ADMIN_PAGES = frozenset({"admin"})
#: callback inputs whose change writes (analyses, uploads, acknowledgements, batches): operator only
OPERATOR_INPUTS = frozenset({
    (ids.ANALYZE_BUTTON, "n_clicks"), (ids.UPLOAD, "contents"), (ids.LIVE_ACK, "n_clicks"),
    (ids.BATCH_UPLOAD, "contents"), (ids.BATCH_FOLDER_START, "n_clicks"), (ids.BATCH_CANCEL, "n_clicks"),
})

PortalAuth = Callable[[], Any]


def resolve_mode(settings: Settings, portal_auth: PortalAuth | None = None) -> str:
    """'portal', 'off', 'login' or 'single-user' (see the module's docstring)."""
    if portal_auth is not None:
        return "portal"
    if settings.auth in ("off", "login"):
        return settings.auth
    return "single-user" if is_loopback_bind(settings.bind_address) else "login"


def is_loopback_bind(bind: str) -> bool:
    """'127.0.0.1:8050', '[::1]:8050', 'localhost:8050' -> True; '0.0.0.0:8050', 'unix:/x' -> False."""
    host = bind.rsplit(":", 1)[0] if not bind.startswith("[") else bind[1:].split("]", 1)[0]
    if bind.startswith("unix:"):
        return False
    return host == "localhost" or _is_loopback_address(host)


def _is_loopback_address(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def current_user() -> User | None:
    """Who the current request acts for (None outside a request or when anonymous)."""
    try:
        return g.get("gem_user")
    except RuntimeError:  # outside a request context
        return None


def recorded_user() -> str | None:
    """The name to record on what the current request writes: None when nobody logged in (open modes)."""
    user = current_user()
    return None if user is None or user in (LOCAL_USER, OPEN_USER) else user.name


def signed_in_name(server: Flask) -> str | None:
    """The name to show with a sign-out link: a user logged in with our login page (not the portal's)."""
    if server.config.get(MODE_KEY) not in ("login", "single-user"):
        return None
    return recorded_user()


def load_secret_key(settings: Settings) -> str:
    """GEM_SECRET_KEY, else `<instance>/secret_key`, created once with mode 0600 (every worker reads the same)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.instance_dir) / "secret_key"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it: wait the moment it takes to write it
        for _ in range(100):
            key = path.read_text(encoding="ascii").strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it, or set GEM_SECRET_KEY") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip()


def _portal_user(portal_auth: PortalAuth) -> User | None:
    try:
        found = portal_auth()
    except Exception:
        log.exception("the portal's auth callable failed; treating the visitor as anonymous")
        return None
    if found is None:
        return None
    name, role = (found if isinstance(found, tuple) else (getattr(found, "name", None), getattr(found, "role", None)))
    try:
        return User(str(name)[:64], check_role(role)) if name else None
    except ValueError:
        log.warning("the portal's user has an unknown role; treating the visitor as anonymous")
        return None


def _is_loopback_host(host: str) -> bool:
    """Whether the Host header names this machine ('localhost:8050', '127.0.0.1', '[::1]:8050'): a page
    of another name that resolves to 127.0.0.1 (DNS rebinding) is not this machine's own browser."""
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
    return name.lower() == "localhost" or _is_loopback_address(name)


def _from_proxy() -> bool:
    return "X-Forwarded-For" in request.headers or "Forwarded" in request.headers


def _json_error(status: int, message: str) -> Response:
    response = Response(orjson.dumps({"error": message}), status=status, mimetype="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="grid-event-monitor"'
    return response


def install_auth(app: dash.Dash, settings: Settings, prefix: str, portal_auth: PortalAuth | None = None,
                 own_server: bool = True) -> str:
    """Guard every request under `prefix` on `app`'s server (see the module's docstring); the mode."""
    server: Flask = app.server
    mode = resolve_mode(settings, portal_auth)
    server.config[MODE_KEY] = mode
    if mode == "off":
        log.warning("GEM_AUTH=off: no login; anyone who reaches %s can read and write everything",
                    settings.bind_address)
        return mode
    history = server.extensions[EXTENSION_KEY].store
    history.author = recorded_user  # history rows written in a request record who asked
    accounts = AccountStore(history)
    server.extensions[ACCOUNTS_KEY] = accounts
    if own_server:
        server.secret_key = load_secret_key(settings)
        server.config.update(SESSION_COOKIE_NAME="gem_session", SESSION_COOKIE_HTTPONLY=True,
                             SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.secure_cookies,
                             PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours))
    elif not server.secret_key:
        server.secret_key = load_secret_key(settings)
    if mode == "single-user":
        log.info("single-user mode: no login for this machine's browser on %s; other clients must log in "
                 "(GEM_AUTH=login requires it of everyone)", settings.bind_address)
    elif mode == "login":
        log.info("login required (GEM_AUTH=%s, bind %s); add accounts with `python -m app users add NAME --role ROLE`",
                 settings.auth or "unset", settings.bind_address)
    else:
        log.info("portal mode: the portal's login decides who uses the dashboard")
    api_paths = ("predict", "api/", "_dash-", "_reload-hash")

    def identify() -> tuple[User | None, str]:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            user = accounts.user_for_token(header[7:].strip())
            return user, "token" if user else "bad-token"
        if mode == "portal":
            return _portal_user(portal_auth), "portal"
        name = session.get(SESSION_USER)
        if isinstance(name, str):
            user = accounts.get_user(name)
            if user is not None:
                return user, "session"
        if (mode == "single-user" and _is_loopback_address(request.remote_addr) and not _from_proxy()
                and _is_loopback_host(request.host)):
            return LOCAL_USER, "local"
        return None, "anonymous"

    def authenticate() -> Response | None:
        if not request.path.startswith(prefix) or request.method == "OPTIONS":  # preflights carry no credentials
            return None
        relative = request.path[len(prefix):]
        if relative in PUBLIC_PATHS or relative.startswith(PUBLIC_PREFIXES) or relative == "logout":
            return None
        try:
            user, via = identify()
        except SQLAlchemyError as exc:  # the accounts live in the history's database
            log.error("accounts database unavailable: %s", type(exc).__name__)
            return _json_error(503, "the accounts database is unavailable; try again shortly")
        if via == "bad-token":
            return _json_error(401, "the API token is unknown or revoked")
        is_api = relative.startswith(api_paths)
        if user is None:
            if is_api or request.method not in ("GET", "HEAD") or mode == "portal":
                if not is_api and mode == "portal":
                    return Response(_PORTAL_ANONYMOUS, status=401, mimetype="text/html")
                return _json_error(401, "log in first, or send an API token (Authorization: Bearer ...)")
            target = request.full_path if request.query_string else request.path
            return redirect(f"{prefix}login?next={quote(target, safe='/')}")
        g.gem_user, g.gem_via = user, via
        if relative.split("/", 1)[0] in ADMIN_PAGES and not user.can("admin"):
            return _json_error(403, "this page is for admins")
        unsafe = request.method in UNSAFE_METHODS
        if unsafe and is_api and not relative.startswith("_dash-") and not user.can("operator"):
            return _json_error(403, f"your role ({user.role}) may read but not analyse or change anything")
        if (unsafe and via in ("session", "portal") and not _csrf_exempt(relative)
                and not _csrf_matches(request.headers.get(CSRF_HEADER))):
            return _json_error(403, "missing or wrong CSRF token: reload the page and try again")
        return None

    def give_csrf_cookie(response: Response) -> Response:
        if not request.path.startswith(prefix) or not getattr(server, "secret_key", None):
            return response
        if g.get("gem_via") in ("session", "portal") and response.mimetype == "text/html":  # a cookie's pages
            response.set_cookie(CSRF_COOKIE, csrf_token(), path=prefix, samesite="Lax",
                                secure=settings.secure_cookies, httponly=False)
        return response

    # first of all: an anonymous request is 401 before its Origin or body type are looked at
    server.before_request_funcs.setdefault(None, []).insert(0, authenticate)
    server.after_request(give_csrf_cookie)
    _add_login_routes(server, prefix, accounts, mode, settings)
    _check_callback_roles(app, prefix)
    return mode


def _csrf_exempt(relative: str) -> bool:
    """JSON `/predict` (see the module's docstring); the admin page's forms carry the token as a field,
    which its view checks."""
    return (relative == "predict" and request.mimetype == "application/json") or relative == "admin"


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def _csrf_matches(given: str | None) -> bool:
    expected = session.get(SESSION_CSRF)
    return isinstance(expected, str) and isinstance(given, str) and secrets.compare_digest(expected, given)


def _check_callback_roles(app: dash.Dash, prefix: str) -> None:
    """Wrap Dash's callback dispatch: a change of an `OPERATOR_INPUTS` input needs an operator."""
    server: Flask = app.server
    path = f"{prefix}_dash-update-component"
    endpoint = next((rule.endpoint for rule in server.url_map.iter_rules() if rule.rule == path), None)
    if endpoint is None:
        return
    dispatch = server.view_functions[endpoint]

    def role_checked_dispatch(*args, **kwargs):
        user = current_user()
        if user is not None and not user.can("operator"):
            body = request.get_json(force=True, silent=True)
            if isinstance(body, dict) and callback_needs_operator(body, app.callback_map):
                return _json_error(403, f"your role ({user.role}) may read but not analyse or change anything")
        return dispatch(*args, **kwargs)

    role_checked_dispatch.__name__ = getattr(dispatch, "__name__", "dispatch")
    server.view_functions[endpoint] = role_checked_dispatch


def callback_needs_operator(body: dict, callback_map: dict) -> bool:
    """Whether this callback request writes: its callback listens to an operator input, and the
    request is not changed only by the callback's other inputs (no change at all counts as a write:
    Dash would run the callback as if at start)."""
    callback = callback_map.get(body.get("output")) if isinstance(body.get("output"), str) else None
    if not callback:
        return False
    declared = {(_id_key(item["id"]), item["property"]) for item in callback.get("inputs") or []}
    if not declared & OPERATOR_INPUTS:
        return False
    changed = body.get("changedPropIds")
    if not isinstance(changed, list) or not changed:
        return True
    for prop_id in changed:
        if not isinstance(prop_id, str) or "." not in prop_id:
            return True
        component, prop = prop_id.rsplit(".", 1)
        if (_id_key(component), prop) in OPERATOR_INPUTS or (_id_key(component), prop) not in declared:
            return True
    return False


def _id_key(component_id: Any) -> str:
    """A component id as OPERATOR_INPUTS names it: the id, or a pattern-matching id's `type`."""
    if isinstance(component_id, dict):
        return str(component_id.get("type"))
    text = str(component_id)
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("type"))
        except (ValueError, AttributeError):
            return text
    return text


def _safe_next(target: str | None, prefix: str) -> str:
    """Where to go after login: a path of ours, never another site."""
    if not target or not target.startswith(prefix) or target.startswith("//") or "\\" in target:
        return prefix
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else prefix


def _add_login_routes(server: Flask, prefix: str, accounts: AccountStore, mode: str, settings: Settings) -> None:
    if mode == "portal":
        return

    def login() -> Response:
        next_page = _safe_next(request.values.get("next"), prefix)
        if request.method == "GET":
            return _page(_login_form(prefix, next_page, csrf_token()))
        if not _csrf_matches(request.form.get(CSRF_FIELD)):
            return _page(_login_form(prefix, next_page, csrf_token(), "The form expired; please try again."), 403)
        name = request.form.get("name", "")[:64]
        password = request.form.get("password", "")[:1024]
        address = request.remote_addr or "unknown"
        try:
            if accounts.locked(name, address):
                return _page(_login_form(prefix, next_page, csrf_token(),
                                         "Too many failed attempts: wait 15 minutes and try again."), 429)
            user = accounts.authenticate(name, password, address)
        except SQLAlchemyError as exc:
            log.error("accounts database unavailable at login: %s", type(exc).__name__)
            return _page(_login_form(prefix, next_page, csrf_token(),
                                     "The accounts database is unavailable; try again shortly."), 503)
        if user is None:
            log.info("failed login for %r from %s", name, address)
            return _page(_login_form(prefix, next_page, csrf_token(), "Wrong name or password."), 401)
        session.clear()  # a new session on login: a session planted before it is worth nothing
        session.permanent = True
        session[SESSION_USER] = user.name
        session[SESSION_CSRF] = secrets.token_urlsafe(32)
        log.info("login: %s (%s) from %s", user.name, user.role, address)
        return redirect(next_page)

    def logout() -> Response:
        if request.method == "GET":
            return _page(_logout_form(prefix, csrf_token()))
        if not _csrf_matches(request.form.get(CSRF_FIELD)):
            return _page(_logout_form(prefix, csrf_token(), "The form expired; please try again."), 403)
        session.clear()
        response = redirect(f"{prefix}login")
        response.delete_cookie(CSRF_COOKIE, path=prefix)
        return response

    def admin() -> Response:
        message = None
        if request.method == "POST":
            if not _csrf_matches(request.form.get(CSRF_FIELD)):
                return _page(_admin_page(prefix, accounts, csrf_token(), "The form expired; please try again."), 403)
            message = _admin_action(accounts, request.form)
        return _page(_admin_page(prefix, accounts, csrf_token(), *(message or (None, None))), wide=True)

    server.add_url_rule(f"{prefix}admin", endpoint=f"{prefix}admin", view_func=admin, methods=["GET", "POST"])
    server.add_url_rule(f"{prefix}login", endpoint=f"{prefix}login", view_func=login, methods=["GET", "POST"])
    server.add_url_rule(f"{prefix}logout", endpoint=f"{prefix}logout", view_func=logout, methods=["GET", "POST"])


_PORTAL_ANONYMOUS = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in</title></head>"
                     "<body><p>Sign in to the portal to see the Grid Event Monitor.</p></body></html>")


def _page(body: str, status: int = 200, wide: bool = False) -> Response:
    prefix = request.path.rsplit("/", 1)[0] + "/"
    width = "60rem" if wide else "26rem"
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Grid Event Monitor: sign in</title>
<link rel="stylesheet" href="{prefix}assets/bootstrap.min.css"><link rel="stylesheet" href="{prefix}assets/dashboard.css">
</head><body class="bg-light"><main class="container" style="max-width: {width}; margin-top: 8vh;">
<div class="card shadow-sm"><div class="card-body">
<h1 class="h4 mb-3">Grid Event Monitor</h1>
{body}
</div></div></main></body></html>"""
    response = Response(document, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_form(prefix: str, next_page: str, token: str, problem: str | None = None) -> str:
    alert = f'<div class="alert alert-danger" role="alert">{html.escape(problem)}</div>' if problem else ""
    return f"""{alert}<form method="post" action="{prefix}login">
<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(token)}">
<input type="hidden" name="next" value="{html.escape(next_page)}">
<div class="mb-3"><label class="form-label" for="name">User name</label>
<input class="form-control" id="name" name="name" autocomplete="username" required autofocus></div>
<div class="mb-3"><label class="form-label" for="password">Password</label>
<input class="form-control" id="password" name="password" type="password" autocomplete="current-password" required></div>
<button class="btn btn-primary w-100" id="login-submit" type="submit">Sign in</button>
</form>"""


def _logout_form(prefix: str, token: str, problem: str | None = None) -> str:
    alert = f'<div class="alert alert-danger" role="alert">{html.escape(problem)}</div>' if problem else ""
    return f"""{alert}<form method="post" action="{prefix}logout">
<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(token)}">
<p>Sign out of the Grid Event Monitor?</p>
<button class="btn btn-primary w-100" id="logout-submit" type="submit">Sign out</button>
</form>"""


def _admin_action(accounts: AccountStore, form) -> tuple[str | None, str | None]:
    """Carry out one admin form: (problem, notice); a secret appears in the notice this once."""
    action = form.get("action")
    try:
        if action == "add-user":
            password = generate_password()
            user = accounts.add_user(form.get("name", ""), form.get("role", ""), password)
            log.info("admin %s added user %s (%s)", recorded_user(), user.name, user.role)
            return None, f"Added {user.name} ({user.role}). Password, shown once: {password}"
        if action == "remove-user":
            name = form.get("name", "")[:64]
            if name == recorded_user():
                return "You cannot remove yourself.", None
            return (None, f"Removed {name}; their tokens are revoked.") if accounts.remove_user(name) else (
                f"No user {name}.", None)
        if action == "create-token":
            token_id, token = accounts.create_token(form.get("owner", "")[:64], form.get("label") or None)
            log.info("admin %s created token %s", recorded_user(), token_id)
            return None, f"Token {token_id}, shown once: {token}"
        if action == "revoke-token":
            token_id = form.get("token_id", "")[:16]
            return (None, f"Revoked {token_id}.") if accounts.revoke_token(token_id) else (
                f"No active token {token_id}.", None)
    except AccountError as exc:
        return str(exc), None
    return "Unknown action.", None


def _admin_page(prefix: str, accounts: AccountStore, token: str, problem: str | None = None,
                notice: str | None = None) -> str:
    field = f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(token)}">'
    alerts = "".join(f'<div class="alert alert-{kind}" role="alert"><code>{html.escape(text)}</code></div>'
                     for kind, text in (("danger", problem), ("success", notice)) if text)
    users = "".join(
        f"<tr><td>{html.escape(user['name'])}</td><td>{html.escape(user['role'])}</td><td>"
        f'<form method="post" action="{prefix}admin">{field}<input type="hidden" name="action" value="remove-user">'
        f'<input type="hidden" name="name" value="{html.escape(user["name"])}">'
        f'<button class="btn btn-sm btn-outline-danger" type="submit">Remove</button></form></td></tr>'
        for user in accounts.list_users())
    token_rows = []
    for item in accounts.list_tokens():
        state = ("revoked" if item["revoked_at"] else
                 f'<form method="post" action="{prefix}admin">{field}<input type="hidden" name="action" '
                 f'value="revoke-token"><input type="hidden" name="token_id" value="{html.escape(item["token_id"])}">'
                 '<button class="btn btn-sm btn-outline-danger" type="submit">Revoke</button></form>')
        used = f"{item['last_used_at']:%Y-%m-%d %H:%M}" if item["last_used_at"] else "never"
        token_rows.append(
            f"<tr><td><code>{html.escape(item['token_id'])}</code></td><td>{html.escape(item['owner'])}</td>"
            f"<td>{html.escape(item['label'] or '')}</td><td>{item['created_at']:%Y-%m-%d %H:%M}</td>"
            f"<td>{used}</td><td>{state}</td></tr>")
    roles = "".join(f'<option value="{role}">{role}</option>' for role in ROLES)
    return f"""<p><a href="{prefix}">Back to the dashboard</a></p>{alerts}
<h2 class="h5">Users</h2>
<table class="table table-sm" id="admin-users"><thead><tr><th>Name</th><th>Role</th><th></th></tr></thead>
<tbody>{users}</tbody></table>
<form method="post" action="{prefix}admin" class="row g-2 mb-4">{field}<input type="hidden" name="action" value="add-user">
<div class="col"><input class="form-control" name="name" placeholder="name" aria-label="new user's name" required></div>
<div class="col"><select class="form-select" name="role" aria-label="role">{roles}</select></div>
<div class="col"><button class="btn btn-primary" type="submit">Add user (password generated)</button></div></form>
<h2 class="h5">API tokens</h2>
<table class="table table-sm" id="admin-tokens"><thead><tr><th>Id</th><th>Owner</th><th>Label</th><th>Created</th>
<th>Last used</th><th></th></tr></thead><tbody>{"".join(token_rows)}</tbody></table>
<form method="post" action="{prefix}admin" class="row g-2">{field}<input type="hidden" name="action" value="create-token">
<div class="col"><input class="form-control" name="owner" placeholder="owner (user name)" aria-label="token owner" required></div>
<div class="col"><input class="form-control" name="label" placeholder="what it is for" aria-label="token label"></div>
<div class="col"><button class="btn btn-primary" type="submit">Create token</button></div></form>"""
