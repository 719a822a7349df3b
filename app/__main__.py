"""`python -m app`: serve the dashboard and the API on one machine (development server), or run
a maintenance command: `python -m app history prune [--days N] [--max-rows N] [--dry-run]`,
`python -m app users add|list|remove|role ...`, `python -m app tokens create|list|revoke ...`.

For several workers use gunicorn: `gunicorn -c gunicorn.conf.py` (see the README). Commands are
`<group> <action>` subparsers (`history prune`, `users add`, `tokens create`...), and the settings
flags come before the command: `python -m app --database-url URL history prune --days 90`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.logging_setup import configure_logging
from app.settings import SETTINGS, Settings, SettingsError
from services.accounts import ROLES

SETTING_FIELDS = frozenset(setting.field for setting in SETTINGS)


def build_parser() -> argparse.ArgumentParser:
    """`python -m app [settings flags] [COMMAND ...]`: no command serves the app."""
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Grid Event Monitor: grid-event classification and P2P impact dashboard. "
                    "Without a command it serves the dashboard and the API.",
    )
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        help_text = f"{setting.help} (env {setting.variable})"
        if setting.kind == "bool":
            parser.add_argument(setting.flag, dest=setting.field, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(setting.flag, dest=setting.field, type=int if setting.kind == "int" else str,
                                help=help_text)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    history = commands.add_parser("history", help="maintain the analyses history",
                                  description="Maintain the analyses history (GEM_DATABASE_URL).")
    history_actions = history.add_subparsers(dest="action", metavar="ACTION", required=True)
    prune = history_actions.add_parser(
        "prune", help="delete old analyses (age and/or row budget)",
        description="Delete analyses older than --days and the oldest beyond the newest --max-rows "
                    "(defaults: GEM_RETENTION_DAYS, GEM_RETENTION_MAX_ROWS). Rows are about 15 kB each.")
    prune.add_argument("--days", type=float, default=None, help="delete analyses older than this many days")
    prune.add_argument("--max-rows", type=int, default=None, help="keep at most this many newest analyses")
    prune.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    users = commands.add_parser("users", help="manage the accounts (GEM_AUTH=login)",
                                description="Accounts of the dashboard and the API, kept in the history's database.")
    user_actions = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = user_actions.add_parser("add", help="add a user (asks for the password, or --generate-password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES, help="viewer reads; operator also analyses and "
                                                                  "acknowledges; admin also manages")
    add.add_argument("--generate-password", action="store_true", help="generate a password and print it once")
    user_actions.add_parser("list", help="list the users and their roles")
    remove = user_actions.add_parser("remove", help="remove a user and revoke their tokens")
    remove.add_argument("name")
    role = user_actions.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    tokens = commands.add_parser("tokens", help="manage API tokens (Authorization: Bearer ...)",
                                 description="API tokens act with their owner's role; only their hash is kept.")
    token_actions = tokens.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = token_actions.add_parser("create", help="create a token for a user and print it once")
    create.add_argument("name", help="the user the token acts for")
    create.add_argument("--label", default=None, help="what the token is for (shown in lists)")
    token_actions.add_parser("list", help="list the tokens (ids, owners, last use; never the secrets)")
    revoke = token_actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    return parser


def parse_command_line(argv: list[str] | None = None) -> tuple[argparse.Namespace, argparse.Namespace]:
    """(the settings flags, the command and its options); `command` is None for serving."""
    parsed = vars(build_parser().parse_args(argv))
    settings = {key: value for key, value in parsed.items() if key in SETTING_FIELDS}
    command = {key: value for key, value in parsed.items() if key not in SETTING_FIELDS}
    return argparse.Namespace(**settings), argparse.Namespace(**command)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of the settings table (app.settings.SETTINGS), each overriding its variable."""
    return parse_command_line(argv)[0]


def history_prune(settings: Settings, days: float | None, max_rows: int | None, dry_run: bool) -> int:
    """`python -m app history prune`: the retention settings unless the flags say otherwise."""
    from services.history import HistoryQueryError, HistoryStore, HistoryUnavailable

    days = settings.retention_days if days is None else days
    max_rows = settings.retention_max_rows if max_rows is None else max_rows
    if days is None and max_rows is None:
        print("nothing to do: give --days and/or --max-rows (or set GEM_RETENTION_DAYS, GEM_RETENTION_MAX_ROWS)",
              file=sys.stderr)
        return 2
    store = HistoryStore(settings.resolved_database_url, timeouts=settings.database_timeouts())
    try:
        result = store.prune(days=days, max_rows=max_rows, dry_run=dry_run)
    except (HistoryQueryError, HistoryUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    limits = ", ".join(part for part in (f"older than {days:g} days" if days is not None else "",
                                         f"beyond the newest {max_rows:,}" if max_rows is not None else "") if part)
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {result.deleted:,} analyses ({limits}: {result.by_age:,} by age, {result.by_count:,} by count); "
          f"{result.remaining:,} kept")
    return 0


def accounts_command(settings: Settings, command: argparse.Namespace, read_password=None) -> int:
    """`python -m app users ...` and `python -m app tokens ...`: the accounts in the history's database."""
    from services.accounts import AccountError, AccountStore, generate_password
    from services.history import HistoryStore

    store = HistoryStore(settings.resolved_database_url, timeouts=settings.database_timeouts())
    accounts = AccountStore(store)
    try:
        return _accounts_action(accounts, command, read_password, generate_password)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.dispose()


def _accounts_action(accounts, command: argparse.Namespace, read_password, generate_password) -> int:
    if command.command == "users" and command.action == "add":
        if command.generate_password:
            password = generate_password()
        else:
            import getpass

            read = read_password or getpass.getpass
            password = read(f"password for {command.name}: ")
            if read("again: ") != password:
                print("error: the passwords differ; nothing changed", file=sys.stderr)
                return 1
        user = accounts.add_user(command.name, command.role, password)
        print(f"added {user.name} ({user.role})")
        if command.generate_password:
            print(f"password (shown once): {password}")
        return 0
    if command.command == "users" and command.action == "list":
        for user in accounts.list_users():
            print(f"{user['name']}\t{user['role']}\t{user['created_at']:%Y-%m-%d %H:%M}")
        return 0
    if command.command == "users" and command.action == "remove":
        if not accounts.remove_user(command.name):
            print(f"error: no user {command.name}", file=sys.stderr)
            return 1
        print(f"removed {command.name} (their tokens are revoked)")
        return 0
    if command.command == "users" and command.action == "role":
        if not accounts.set_role(command.name, command.role):
            print(f"error: no user {command.name}", file=sys.stderr)
            return 1
        print(f"{command.name} is now {command.role}")
        return 0
    if command.command == "tokens" and command.action == "create":
        token_id, token = accounts.create_token(command.name, command.label)
        print(f"token {token_id} for {command.name} (shown once; keep it secret):")
        print(token)
        return 0
    if command.command == "tokens" and command.action == "list":
        for token in accounts.list_tokens():
            state = f"revoked {token['revoked_at']:%Y-%m-%d %H:%M}" if token["revoked_at"] else "active"
            used = f"{token['last_used_at']:%Y-%m-%d %H:%M}" if token["last_used_at"] else "never used"
            print(f"{token['token_id']}\t{token['owner']}\t{token['label'] or '-'}\t{used}\t{state}")
        return 0
    if not accounts.revoke_token(command.token_id):
        print(f"error: no active token {command.token_id}", file=sys.stderr)
        return 1
    print(f"revoked {command.token_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args, command = parse_command_line(argv)
    configure_logging()  # one line per record, control characters escaped (app/logging_setup.py)
    try:
        settings = Settings.from_env(**vars(args))
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if command.command == "history" and command.action == "prune":
        return history_prune(settings, command.days, command.max_rows, command.dry_run)
    if command.command in ("users", "tokens"):
        return accounts_command(settings, command)

    from app import create_app

    app = create_app(settings=settings)
    logging.getLogger("app").info(
        "Grid Event Monitor on http://%s:%d/ (artifacts %s, history %s)",
        settings.host, settings.port, settings.artifacts_dir, app.server.extensions["grid_event_monitor"].store.dialect,
    )
    app.run(host=settings.host, port=settings.port, debug=settings.debug, dev_tools_disable_version_check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
