"""Plain-text formatting shared by the CLI's human output (and the TUI's labels).

Output must stay readable at 80 columns over SSH, so long values are
shortened in the middle rather than wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def shape_str(shape: Sequence[int]) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def shorten(text: str, width: int) -> str:
    """Shorten in the middle: the start and end of a name are what tell files apart."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[len(text) - tail :]


def table(rows: Sequence[Sequence[str]], *, right: Sequence[int] = (), max_widths: dict[int, int] | None = None, indent: str = "") -> list[str]:
    """Align columns; `right` lists column indexes aligned right; `max_widths` shortens columns."""
    if not rows:
        return []
    max_widths = max_widths or {}
    cells = [[shorten(str(c), max_widths.get(i, 10_000)) for i, c in enumerate(r)] for r in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(len(r) for r in cells))]
    lines = []
    for r in cells:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines
