"""The status bar: catalog backend and location, online/offline, pending outbox, data root.

The location arrives already masked by the service (no password ever reaches
the UI). Being offline is a state shown here, never an error dialog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from npztui.textfmt import shorten


def display_path(p: Path | str) -> str:
    """Short and stable: relative to the working directory when under it, home as `~`."""
    text = str(p)
    path = Path(text)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd())) or "."
        except (ValueError, OSError):
            pass
    home = str(Path.home())
    if home not in ("/", "") and text.startswith(home + "/"):
        return "~" + text[len(home):]
    return text


def server_host(location: str) -> str:
    """`host[:port]/db` of a (masked) server location, a URL or a libpq `key=value` string."""
    if "://" in location:
        rest = location.split("://", 1)[-1].rsplit("@", 1)[-1]
        return rest.split("?", 1)[0] or location
    fields = dict(part.split("=", 1) for part in location.split() if "=" in part)
    host = fields.get("host") or fields.get("hostaddr") or "localhost"
    if fields.get("port"):
        host += f":{fields['port']}"
    return f"{host}/{fields['dbname']}" if fields.get("dbname") else host or location


class StatusBar(Static):
    COMPONENT_CLASSES = {"status--online", "status--offline", "status--pending", "status--strong"}

    syncing: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), id=id)
        self.status: Any | None = None
        self.data_root: str = ""
        self.note: str = ""

    def set_data_root(self, root: str) -> None:
        self.data_root = root
        self._render_status()

    def set_status(self, status: Any) -> None:
        self.status = status
        self._render_status()

    def set_note(self, note: str) -> None:
        self.note = note
        self._render_status()

    def watch_syncing(self) -> None:
        self._render_status()

    def _render_status(self) -> None:
        """One line: `backend location  ● online  N pending  [note]  root: …`.

        The location gets whatever width the other parts leave (shortened in
        the middle), so the state parts are always visible at 80 columns.
        """
        s = self.status
        width = max(20, self.size.width or 78)
        tail = Text(no_wrap=True)
        if s is not None:
            tail.append("  ")
            if getattr(s, "server_configured", True) is False:
                tail.append("local only", style="dim")
            elif getattr(s, "online", False):
                tail.append("● online", style=self._style("status--online"))
            else:
                tail.append("○ offline", style=self._style("status--offline"))
            pending = int(getattr(s, "pending", 0) or 0)
            tail.append(f"  {pending} pending", style=self._style("status--pending") if pending else "")
            conflicts = int(getattr(s, "conflicts", 0) or 0)
            if conflicts:
                tail.append(f"  {conflicts} conflict{'s' if conflicts != 1 else ''}", style=self._style("status--offline"))
        if self.syncing:
            tail.append("  ⟳ syncing", style="italic")
        if self.note:
            tail.append(f"  {self.note}", style="italic")
        root = Text(no_wrap=True)
        if self.data_root:
            root.append("  root: ")
            root.append(shorten(self.data_root, max(10, width // 4)))
        text = Text(no_wrap=True, overflow="ellipsis")
        if s is None:
            text.append("catalog: …")
        else:
            backend = str(getattr(s, "backend", "") or "catalog")
            location = str(getattr(s, "location", "") or "")
            if getattr(s, "server_configured", False):
                location = server_host(location)
            else:
                location = display_path(location)  # a local file
            room = max(8, width - len(backend) - 1 - tail.cell_len - root.cell_len)
            text.append(f"{backend} ", style=self._style("status--strong"))
            text.append(shorten(location, room))
        text.append_text(tail)
        text.append_text(root)
        self.update(text)

    def _style(self, name: str):
        return self.get_component_rich_style(name, partial=True) if self.is_mounted else ""

    def on_resize(self) -> None:
        self._render_status()

    def on_mount(self) -> None:
        # re-colour when the theme changes (after the new CSS is applied)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._render_status))
