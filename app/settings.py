"""Runtime settings of the app: one frozen object, read from environment variables or CLI flags.

Frozen so that every worker and every request sees the same configuration; change it by building
a new Settings (``dataclasses.replace``) and a new app.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARTIFACTS_DIR = REPO_ROOT / "artifacts"
DEFAULT_INSTANCE_DIR = REPO_ROOT / "instance"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
#: the API refuses bodies above this size with 413 (a 3 x 726 waveform as JSON is about 60 kB)
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

#: environment variable -> Settings field, documented in the README
ENV_VARS: dict[str, str] = {
    "GEM_HOST": "host",
    "GEM_PORT": "port",
    "GEM_ARTIFACTS_DIR": "artifacts_dir",
    "GEM_DATABASE_URL": "database_url",
    "GEM_INSTANCE_DIR": "instance_dir",
    "GEM_DEBUG": "debug",
}


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Where the app listens, where the model and the history live."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    artifacts_dir: Path = field(default=DEFAULT_ARTIFACTS_DIR)
    #: SQLAlchemy URL of the history database; None means SQLite at <instance_dir>/history.db
    database_url: str | None = None
    instance_dir: Path = field(default=DEFAULT_INSTANCE_DIR)
    debug: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "artifacts_dir", Path(self.artifacts_dir).expanduser().resolve())
        object.__setattr__(self, "instance_dir", Path(self.instance_dir).expanduser().resolve())
        if not 0 < int(self.port) < 65536:
            raise SettingsError(f"port must be between 1 and 65535, got {self.port}")
        if self.max_body_bytes <= 0:
            raise SettingsError("max_body_bytes must be positive")
        if self.database_url is not None and not self.database_url.strip():
            object.__setattr__(self, "database_url", None)

    @property
    def samples_dir(self) -> Path:
        """The folder of sample waveforms (artifact contract: <artifacts>/sample_data)."""
        return self.artifacts_dir / "sample_data"

    @property
    def samples_info_path(self) -> Path:
        return self.artifacts_dir / "samples_info.json"

    @property
    def resolved_database_url(self) -> str:
        """The database URL actually used: the configured one or the instance SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_dir / 'history.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from GEM_* environment variables; keyword overrides (e.g. CLI flags) win."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for variable, name in ENV_VARS.items():
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            values[name] = _parse(variable, name, raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})


def _parse(variable: str, name: str, raw: str) -> object:
    if name == "port":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{variable} must be an integer port, got {raw!r}") from None
    if name == "debug":
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{variable} must be true or false, got {raw!r}")
    if name in {"artifacts_dir", "instance_dir"}:
        return Path(raw)
    return raw
