"""`python -m app`: serve the dashboard and the API on one machine (development server).

For several workers use gunicorn: `gunicorn -c gunicorn.conf.py` (see the README).
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.settings import Settings, SettingsError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Grid Event Monitor: grid-event classification and P2P impact dashboard.",
    )
    parser.add_argument("--host", help="interface to listen on (env GEM_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env GEM_PORT, default 8050)")
    parser.add_argument("--artifacts", help="model artifacts folder (env GEM_ARTIFACTS_DIR, default ./artifacts)")
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the history, e.g. postgresql+psycopg://user@host/db "
        "(env GEM_DATABASE_URL, default SQLite in the instance folder)",
    )
    parser.add_argument("--instance", help="instance folder for the SQLite history (env GEM_INSTANCE_DIR)")
    parser.add_argument("--debug", action="store_true", default=None, help="Dash debug mode (env GEM_DEBUG)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            artifacts_dir=args.artifacts,
            database_url=args.database_url,
            instance_dir=args.instance,
            debug=args.debug,
        )
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
