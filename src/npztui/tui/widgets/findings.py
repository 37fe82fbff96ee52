"""The Findings pane: severity-coloured findings, the highlighted one's rule explained.

Enter on a finding posts `FindingsPane.JumpToKey` with the finding's key (a
dotted metadata path or an array name); the app shows it in the Metadata pane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
SEVERITY_LABEL = {"error": "ERROR", "warning": "WARN ", "info": "INFO "}


def _fmt(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


class FindingsList(OptionList):
    """One option per finding; severity colours come from the theme via component classes."""

    COMPONENT_CLASSES = OptionList.COMPONENT_CLASSES | {"findings--error", "findings--warning", "findings--info", "findings--key"}

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.findings: list[Any] = []

    def set_findings(self, findings: Sequence[Any]) -> None:
        self.findings = sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))
        self._rebuild()

    def _rebuild(self) -> None:
        highlighted = self.highlighted
        self.clear_options()
        self.add_options([Option(self._prompt(f), id=str(i)) for i, f in enumerate(self.findings)])
        if self.findings:
            self.highlighted = min(highlighted or 0, len(self.findings) - 1)

    def _prompt(self, f: Any) -> Text:
        style = self.get_component_rich_style(f"findings--{f.severity}", partial=True) if self.is_mounted else ""
        text = Text(no_wrap=False)
        text.append(SEVERITY_LABEL.get(f.severity, f.severity.upper()[:5]), style=style)
        text.append(" ")
        text.append(f.code, style="bold")
        text.append("  ")
        text.append(f.message)
        if f.key:
            text.append("\n      key ", style="dim")
            text.append(f.key, style="italic")
            if f.expected is not None or f.actual is not None:
                text.append(f"  expected {_fmt(f.expected)}, actual {_fmt(f.actual)}", style="dim")
        return text

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(
            self, lambda _theme: self.call_after_refresh(self._rebuild) if self.findings else None
        )

    @property
    def current(self) -> Any | None:
        i = self.highlighted
        return self.findings[i] if i is not None and 0 <= i < len(self.findings) else None


class FindingsPane(Vertical):
    class JumpToKey(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, explain: Callable[[str], str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._explain = explain

    def compose(self) -> ComposeResult:
        yield Static(Text("No dataset open."), id="findings-summary", classes="pane-caption")
        yield FindingsList(id="findings-list")
        yield Static(Text(""), id="findings-explain")

    def show_loading(self) -> None:
        self.query_one("#findings-summary", Static).update(Text("Checking …", style="italic"))

    def show_error(self, code: str, message: str) -> None:
        summary = Text()
        summary.append(f" {code} ", style="bold reverse")
        summary.append(f" the file could not be read safely: {message}")
        self.query_one("#findings-summary", Static).update(summary)
        self.query_one(FindingsList).set_findings([])
        self.query_one("#findings-explain", Static).update(Text(""))

    def show_findings(self, findings: Sequence[Any], ok: bool | None) -> None:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        summary = Text()
        if not findings:
            summary.append("No findings: metadata and arrays agree.")
        else:
            summary.append(f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} info")
            summary.append("  ·  " + ("passes" if ok else "fails") + " in warn mode", style="dim")
            summary.append("  ·  Enter: show the key", style="dim")
        self.query_one("#findings-summary", Static).update(summary)
        lst = self.query_one(FindingsList)
        lst.set_findings(findings)
        self._explain_current()

    @on(OptionList.OptionHighlighted, "#findings-list")
    def _explain_current(self) -> None:
        f = self.query_one(FindingsList).current
        text = Text()
        if f is not None:
            text.append(f"{f.code}: ", style="bold")
            text.append(self._explain(f.code) or "No explanation recorded for this rule.")
        self.query_one("#findings-explain", Static).update(text)

    @on(OptionList.OptionSelected, "#findings-list")
    def _jump(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        f = self.query_one(FindingsList).current
        if f is not None and f.key:
            self.post_message(self.JumpToKey(f.key))
        elif f is not None:
            self.app.notify("This finding is about the whole file (no key).", timeout=3)
