"""The status bar: catalog backend and location, online/offline, pending outbox, data root.

The location arrives already masked by the service (no password ever reaches
the UI). Being offline is a state shown here, never an error dialog.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from npztui.textfmt import shorten


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    StatusBar > .status--online { color: $success; text-style: bold; }
    StatusBar > .status--offline { color: $warning; text-style: bold; }
    StatusBar > .status--pending { color: $accent; text-style: bold; }
    StatusBar > .status--strong { color: $foreground; text-style: bold; }
    """
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
        s = self.status
        text = Text(no_wrap=True, overflow="ellipsis")
        width = max(20, self.size.width or 80)
        if s is None:
            text.append("catalog: …")
        else:
            backend = str(getattr(s, "backend", "") or "catalog")
            location = str(getattr(s, "location", "") or "")
            text.append(f"{backend} ", style=self._style("status--strong"))
            text.append(shorten(location, max(12, width // 3)))
            text.append("  ")
            if getattr(s, "server_configured", True) is False:
                text.append("local only", style="dim")
            elif getattr(s, "online", False):
                text.append("● online", style=self._style("status--online"))
            else:
                text.append("○ offline", style=self._style("status--offline"))
            pending = int(getattr(s, "pending", 0) or 0)
            text.append(f"  {pending} pending", style=self._style("status--pending") if pending else "")
        if self.syncing:
            text.append("  ⟳ syncing", style="italic")
        if self.note:
            text.append(f"  {self.note}", style="italic")
        if self.data_root:
            text.append("  root: ")
            text.append(shorten(self.data_root, max(12, width // 4)))
        self.update(text)

    def _style(self, name: str):
        return self.get_component_rich_style(name, partial=True) if self.is_mounted else ""

    def on_resize(self) -> None:
        self._render_status()

    def on_mount(self) -> None:
        # re-colour when the theme changes (after the new CSS is applied)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._render_status))
