"""`python -m app`: serve the dashboard and the API on one machine (development server).

For several workers use gunicorn: `gunicorn -c gunicorn.conf.py` (see the README).
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.settings import SETTINGS, Settings, SettingsError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of the settings table (app.settings.SETTINGS), each overriding its variable."""
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Grid Event Monitor: grid-event classification and P2P impact dashboard.",
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(**vars(args))
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

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
