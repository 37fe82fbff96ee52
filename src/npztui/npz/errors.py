"""Typed errors for files that cannot be read safely.

Every way a file can fail maps to one code so the CLI can print a single line
(exit code 3) and the TUI can show the problem in place instead of crashing.
The codes are part of the public contract (SPEC §2.4) and appear in `--json`.
"""

from __future__ import annotations

from pathlib import Path


class NpzError(Exception):
    """A file (or one of its members) could not be read safely."""

    code = "CORRUPT"

    def __init__(self, path: str | Path | None, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class NotFoundError(NpzError):
    code = "NOT_FOUND"


class PermissionDeniedError(NpzError):
    code = "PERMISSION"


class NotNpzError(NpzError):
    code = "NOT_NPZ"


class CorruptError(NpzError):
    code = "CORRUPT"


class TruncatedError(NpzError):
    code = "TRUNCATED"


class TooLargeError(NpzError):
    code = "TOO_LARGE"


class RefusedError(NpzError):
    """A read that npztui will not perform on principle (object arrays)."""

    code = "REFUSED"


def error_from_os(path: str | Path, exc: OSError) -> NpzError:
    """Translate an OSError into the typed error a user can act on."""
    import errno

    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFoundError(path, "no such file")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDeniedError(path, "permission denied")
    if exc.errno == errno.EISDIR:
        return NotNpzError(path, "is a directory, not an .npz file")
    return CorruptError(path, f"cannot read: {exc.strerror or exc}")
