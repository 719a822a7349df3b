"""`python -m app`: serve the dashboard and the API on one machine (development server), or run
a maintenance command: `python -m app history prune [--days N] [--max-rows N] [--dry-run]`.

For several workers use gunicorn: `gunicorn -c gunicorn.conf.py` (see the README). Commands are
`<group> <action>` subparsers (`history prune` now; `users ...` fits beside it), and the settings
flags come before the command: `python -m app --database-url URL history prune --days 90`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.logging_setup import configure_logging
from app.settings import SETTINGS, Settings, SettingsError

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
