"""Settings: config file (XDG config dir) < environment variables < command-line flags.

The config file is a flat TOML table; `npztui` writes it only to remember a
choice the user made in the UI (the theme), atomically, keeping other keys.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from .catalog.util import default_catalog_path

APP = "npztui"

ENV = {
    "catalog": "NPZTUI_CATALOG",
    "database_url": "NPZTUI_DATABASE_URL",
    "theme": "NPZTUI_THEME",
    "data_root": "NPZTUI_DATA_ROOT",
    "owner": "NPZTUI_OWNER",
    "max_read_bytes": "NPZTUI_MAX_READ_BYTES",
    "max_metadata_bytes": "NPZTUI_MAX_METADATA_BYTES",
}
# libpq's own environment: if any is set, a server is configured even without a URL.
LIBPQ_ENV = ("PGSERVICE", "PGHOST", "PGDATABASE", "PGSERVICEFILE")


def config_path() -> Path:
    env = os.environ.get("NPZTUI_CONFIG")
    return Path(env) if env else platformdirs.user_config_path(APP) / "config.toml"


@dataclass(frozen=True)
class Settings:
    catalog: Path = field(default_factory=default_catalog_path)
    database_url: str | None = None
    theme: str = "npztui-dark"
    data_root: Path | None = None
    owner: str | None = None
    max_read_bytes: int = 1 << 30
    max_metadata_bytes: int = 16 << 20
    config_file: Path = field(default_factory=config_path)

    @property
    def server_configured(self) -> bool:
        return self.database_url is not None


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in ("catalog", "data_root", "config_file"):
        return Path(os.path.expanduser(str(value)))
    if name in ("max_read_bytes", "max_metadata_bytes"):
        return int(value)
    return str(value)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read config file {path}: {exc}") from None


def load_settings(**flags: Any) -> Settings:
    """Resolve settings; `flags` are command-line values (None means "not given")."""
    path = Path(flags.pop("config_file", None) or config_path())
    values: dict[str, Any] = {"config_file": path}
    known = {f.name for f in fields(Settings)}
    for key, value in read_config_file(path).items():
        if key in known and key != "config_file":
            values[key] = _coerce(key, value)
    for key, var in ENV.items():
        if os.environ.get(var):
            values[key] = _coerce(key, os.environ[var])
    if "database_url" not in values and any(os.environ.get(v) for v in LIBPQ_ENV):
        values["database_url"] = ""  # empty conninfo: libpq reads PG* variables / the service file
    for key, value in flags.items():
        if key in known and value is not None:
            values[key] = _coerce(key, value)
    return Settings(**values)


def remember(settings: Settings, **changes: Any) -> Settings:
    """Persist `changes` in the config file (atomic rewrite) and return updated settings."""
    path = settings.config_file
    current = read_config_file(path) if path.exists() else {}
    current.update({k: (str(v) if isinstance(v, Path) else v) for k, v in changes.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# npztui settings (flat TOML); environment variables and flags override these."]
    for k, v in sorted(current.items()):
        lines.append(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}")
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return replace(settings, **{k: _coerce(k, v) for k, v in changes.items()})
