"""The catalog API: `Catalog` and `open_catalog`.

`Catalog` is the local working copy (SQLite). Every mutating method writes the
row and an outbox entry in one transaction, so a change either exists and will
be pushed, or does not exist at all; the server never has to be up. The
methods live in small mixins by subject (datasets, tags, configurations and
sessions, runs); `sync.py` moves rows to and from the server.

Ownership mirrors the server's row-level security: rows are created with the
catalog's `owner`; rows owned by someone else (pulled because they are public)
are readable but every change raises `PermissionDenied` — locally, before the
server would refuse it.
"""

from __future__ import annotations

import os

from .base import os_user
from .configs import ConfigsMixin
from .datasets import DatasetsMixin
from .runs import RunsMixin
from .tags import TagsMixin
from .util import default_catalog_path

__all__ = ["Catalog", "open_catalog", "os_user"]


class Catalog(DatasetsMixin, TagsMixin, ConfigsMixin, RunsMixin):
    """The local catalog. Thread-safe; one instance per process and file is enough."""


def open_catalog(path: str | os.PathLike[str] | None = None, *, owner: str | None = None,
                 busy_timeout: float = 30.0) -> "Catalog":
    """Open (creating and migrating on first use) the SQLite catalog at `path`.

    `path` defaults to `default_catalog_path()`. `owner` names the local owner
    of new rows (default: the OS user); once the catalog has synced with a
    server, the server role is the owner and `owner` is ignored.
    """
    return Catalog(path if path is not None else default_catalog_path(), owner=owner, busy_timeout=busy_timeout)
