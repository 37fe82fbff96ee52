"""`?`: every key binding, grouped by where it works, read from the widgets' BINDINGS.

The list is built from the binding tables themselves (not a hand-kept copy), so
a new binding shows up here and in the command palette without extra work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HelpSection = tuple[str, Sequence[tuple[str, str]]]


def binding_rows(app, bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        description = b.tooltip or b.description or b.action
        keys = " ".join(app.get_key_display(Binding(k.strip(), b.action)) for k in b.key.split(","))
        if description in seen and not b.key:
            continue
        seen.add(description)
        rows.append((keys, description))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss_help", "Close help"),
        Binding("j,down", "scroll('down')", "Scroll down", show=False),
        Binding("k,up", "scroll('up')", "Scroll up", show=False),
    ]

    def __init__(self, sections: Sequence[HelpSection]) -> None:
        super().__init__()
        self.sections = list(sections)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("npztui keys  (Esc closes; Ctrl+P runs any action by name)", style="bold"), id="help-title")
            for title, rows in self.sections:
                table = Table.grid(padding=(0, 2))
                table.add_column(style="bold", min_width=14, no_wrap=True)
                table.add_column()
                for keys, description in rows:
                    table.add_row(Text(keys), Text(description))
                yield Static(Text(title, style="bold underline"), classes="help-section")
                yield Static(table, classes="help-table")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)

    def action_scroll(self, direction: str) -> None:
        box = self.query_one("#help", VerticalScroll)
        if direction == "down":
            box.scroll_down(animate=False)
        else:
            box.scroll_up(animate=False)
