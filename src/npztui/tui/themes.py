"""Colour themes from `themes/*.toml`, registered with Textual at start.

A theme file is a flat TOML table of Textual `Theme` fields (`primary`,
`background`, `dark`, ...) plus an optional `[variables]` table of design
variables. Its `name` (default `npztui-<stem>`) is what `--theme` and the
palette use; the file stem works as an alias (`--theme light`).

Directories searched, later ones overriding earlier ones by name: the
`themes/` directory shipped with the project, then `themes/` beside the user's
config file. A broken file is skipped and reported, never fatal.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from textual.theme import Theme

DEFAULT_THEME = "npztui-dark"
_THEME_FIELDS = {f.name for f in fields(Theme)} - {"name", "variables"}
_BOOL_FIELDS = {"dark", "ansi"}
_FLOAT_FIELDS = {"luminosity_spread", "text_alpha"}


def shipped_theme_dir() -> Path:
    """`themes/` at the project root (src/npztui/tui/themes.py -> ../../../themes)."""
    return Path(__file__).resolve().parents[3] / "themes"


@dataclass
class ThemeSet:
    themes: list[Theme] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def resolve(self, name: str | None, available: set[str] | None = None) -> str | None:
        """The registered theme name for `name` (a theme name or a file-stem alias)."""
        if not name:
            return None
        names = {t.name for t in self.themes} | (available or set())
        if name in names:
            return name
        alias = self.aliases.get(name) or self.aliases.get(name.lower())
        return alias if alias in names else None


def theme_from_table(stem: str, table: dict) -> Theme:
    """Build a Theme from one parsed TOML table; raises ValueError on bad content."""
    if not isinstance(table, dict):
        raise ValueError("not a TOML table")
    name = table.get("name", f"npztui-{stem}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("`name` must be a non-empty string")
    if "primary" not in table:
        raise ValueError("`primary` colour is required")
    kwargs: dict = {}
    for key, value in table.items():
        if key in ("name", "variables"):
            continue
        if key not in _THEME_FIELDS:
            raise ValueError(f"unknown key {key!r}")
        if key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
        elif key in _FLOAT_FIELDS:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{key} must be a number")
            value = float(value)
        elif not isinstance(value, str):
            raise ValueError(f"{key} must be a colour string")
        kwargs[key] = value
    variables = table.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ValueError("[variables] must map names to strings")
    theme = Theme(name=name.strip(), variables={str(k): v for k, v in variables.items()}, **kwargs)
    try:
        theme.to_color_system()  # validates every colour now rather than at render time
    except Exception as exc:  # noqa: BLE001 - ColorParseError and friends
        raise ValueError(str(exc)) from None
    return theme


def load_themes(dirs: list[Path] | None = None) -> ThemeSet:
    """Read every `*.toml` in `dirs` (default: shipped, then user config `themes/`)."""
    out = ThemeSet()
    by_name: dict[str, Theme] = {}
    for d in dirs if dirs is not None else [shipped_theme_dir()]:
        try:
            files = sorted(Path(d).glob("*.toml"))
        except OSError:
            continue
        for path in files:
            try:
                with open(path, "rb") as f:
                    theme = theme_from_table(path.stem, tomllib.load(f))
            except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
                out.problems.append(f"theme {path.name}: {exc}")
                continue
            by_name[theme.name] = theme
            out.aliases[path.stem.lower()] = theme.name
            short = theme.name.removeprefix("npztui-")
            out.aliases.setdefault(short.lower(), theme.name)
    out.themes = list(by_name.values())
    return out


def default_theme_dirs(config_file: Path | None) -> list[Path]:
    dirs = [shipped_theme_dir()]
    if config_file is not None:
        dirs.append(Path(config_file).parent / "themes")
    return dirs
