"""Small helpers: ids, timestamps, JSON, password masking, the default path.

Timestamps are UTC ISO-8601 strings with microseconds and a "Z": fixed width,
so they compare correctly as strings in SQLite and convert losslessly to and
from PostgreSQL timestamptz. "Last writer wins" compares exactly these values.
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import platformdirs

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MASK = "***"


def default_catalog_path() -> Path:
    """Where the embedded catalog lives when nothing else is configured."""
    return platformdirs.user_data_path("npztui") / "catalog.sqlite3"


def new_id() -> str:
    """Client-side UUID: rows get their final identity offline, before any sync."""
    return str(uuid.uuid4())


class Clock:
    """UTC timestamps that never repeat or go backwards within a process.

    Two edits in the same microsecond would otherwise tie under last-writer-wins.
    """

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def now(self, after: str | None = None) -> str:
        """A fresh timestamp, strictly later than the previous one and than `after`."""
        with self._lock:
            t = datetime.now(timezone.utc)
            floor = self._last
            if after:
                floor = max(floor, parse_ts(after))
            if t <= floor:
                t = floor + timedelta(microseconds=1)
            self._last = t
            return t.strftime(TS_FORMAT)


CLOCK = Clock()


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, TS_FORMAT).replace(tzinfo=timezone.utc)


def format_ts(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime(TS_FORMAT)


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys) so equal documents compare equal as text.

    NaN and ±Infinity are not JSON (PostgreSQL's jsonb rejects them); they are
    stored as null rather than making a whole scan record unstorable.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False, default=_json_default)
    except ValueError:
        return json.dumps(_finite(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False, default=_json_default)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist"):
        return _finite(value.tolist())
    return value


def _json_default(value: Any) -> Any:
    """Scan metadata can hold numpy scalars/arrays, bytes, sets, paths: store them as plain JSON.

    Anything else becomes its str(): a scan must never fail to register a file
    because its metadata holds an exotic (but safely unpickled) value.
    """
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, complex):
        return [value.real, value.imag]
    return str(value)


# --------------------------------------------------------------------------- passwords

_KV_SECRET = re.compile(
    r"(?P<key>\b(?:ssl)?password\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s']\S*)", re.IGNORECASE
)
_QUERY_SECRET = re.compile(r"(?P<key>(?:^|[?&])(?:ssl)?password=)(?P<value>[^&#]*)", re.IGNORECASE)


def mask_url(url: str | None) -> str:
    """`url` (libpq URI or key=value conninfo) with every password replaced by ***.

    Used for anything shown or logged: `db status`, the TUI status bar, errors.
    An empty conninfo means "libpq environment / service file" and says so.
    """
    if url is None:
        return ""
    text = str(url)
    if not text.strip():
        return "(libpq environment)"
    m = re.match(r"^\s*(postgres(?:ql)?://)", text, re.IGNORECASE)
    if not m:
        return _KV_SECRET.sub(lambda mm: mm.group("key") + MASK, text)
    scheme, rest = m.group(1), text[m.end():]
    q = rest.find("?")
    authority_part = rest if q < 0 else rest[:q]
    query = "" if q < 0 else rest[q:]
    at = authority_part.rfind("@")
    if at >= 0:
        userinfo, hostpart = authority_part[:at], authority_part[at + 1:]
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            userinfo = f"{user}:{MASK}"
        authority_part = f"{userinfo}@{hostpart}"
    query = _QUERY_SECRET.sub(lambda mm: mm.group("key") + MASK, query)
    return f"{scheme}{authority_part}{query}"


def url_secrets(url: str | None) -> list[str]:
    """The password values inside `url`, raw and percent-decoded (to scrub messages)."""
    if not url:
        return []
    found: list[str] = []
    for mm in _KV_SECRET.finditer(url):
        v = mm.group("value")
        found.append(v[1:-1] if v.startswith("'") else v)
    m = re.match(r"^\s*postgres(?:ql)?://([^?]*)", url, re.IGNORECASE)
    if m:
        authority = m.group(1)
        at = authority.rfind("@")
        if at >= 0 and ":" in authority[:at]:
            found.append(authority[:at].split(":", 1)[1])
    for mm in _QUERY_SECRET.finditer(url):
        found.append(mm.group("value"))
    out: list[str] = []
    for s in found:
        for v in (s, unquote(s)):
            if v and v not in out:
                out.append(v)
    return out


def scrub(message: str, url: str | None) -> str:
    """Remove any password of `url` from an error message before it is shown."""
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        message = message.replace(secret, MASK)
    return message
