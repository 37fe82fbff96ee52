"""The tag editor: a modal form returning a `TagForm`, or None when cancelled.

Fields: label (required), category, quality 0–1 (optional, validated as you
type), reference, notes. Ctrl+S or the Save button saves, Escape cancels.
Nothing here touches the catalog: the app saves the returned form in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Function, Number
from textual.widgets import Button, Checkbox, Input, Label, Static, TextArea

MAX_LABEL = 200


@dataclass(frozen=True)
class TagForm:
    label: str
    category: str | None
    quality_score: float | None
    is_reference: bool
    notes: str | None
    row: int | None = None  # only asked for non-circuit data (0-based data row)


def parse_quality(text: str) -> float | None:
    """'' -> None; '0.8' -> 0.8; anything outside [0, 1] or not a number -> ValueError."""
    text = text.strip()
    if not text:
        return None
    value = float(text)
    if not 0.0 <= value <= 1.0 or value != value:
        raise ValueError("quality must be between 0 and 1")
    return value


class TagEditor(ModalScreen[TagForm | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, title: Text | str, initial: TagForm | None = None, *, rows: int | None = None,
                 ask_row: bool = False) -> None:
        """`ask_row`: show a Row field (0 … rows−1) — tags on non-circuit data name a data row."""
        super().__init__()
        self._title = title if isinstance(title, Text) else Text(title)
        self._initial = initial
        self._rows = rows
        self._ask_row = ask_row

    def compose(self) -> ComposeResult:
        init = self._initial
        with Vertical(id="tag-editor"):
            yield Static(self._title, id="tag-editor-title")
            yield Label("Label")
            yield Input(
                value=init.label if init else "",
                placeholder="e.g. best fit",
                id="tag-label",
                max_length=MAX_LABEL,
                compact=True,
                validators=[Function(lambda s: bool(s.strip()), "a label is required")],
            )
            with Horizontal(id="tag-row"):
                with Vertical():
                    yield Label("Category")
                    yield Input(value=(init.category or "") if init else "", placeholder="optional", id="tag-category",
                                max_length=80, compact=True)
                if self._ask_row:
                    with Vertical(id="tag-row-box"):
                        hint = f"Row 0–{self._rows - 1}" if self._rows else "Row (0-based)"
                        yield Label(hint)
                        yield Input(
                            value=str(init.row if init and init.row is not None else 0),
                            id="tag-row-index",
                            type="integer",
                            compact=True,
                            validators=[Number(minimum=0, maximum=(self._rows - 1) if self._rows else None)],
                        )
                with Vertical():
                    yield Label("Quality 0–1")
                    yield Input(
                        value="" if not init or init.quality_score is None else f"{init.quality_score:g}",
                        placeholder="optional",
                        id="tag-quality",
                        compact=True,
                        validators=[Number(minimum=0.0, maximum=1.0, failure_description="quality must be between 0 and 1")],
                        valid_empty=True,
                    )
            yield Checkbox("Reference model", value=bool(init and init.is_reference), id="tag-reference", compact=True)
            yield Label("Notes")
            yield TextArea((init.notes or "") if init else "", id="tag-notes", soft_wrap=True, show_line_numbers=False,
                           compact=True)
            yield Static(Text(""), id="tag-error")
            with Horizontal(id="tag-buttons"):
                yield Button("Save ^s", variant="primary", id="tag-save", compact=True)
                yield Button("Cancel esc", id="tag-cancel", compact=True)

    def on_mount(self) -> None:
        blink = getattr(self.app, "cursor_blink", True)
        for w in self.query(Input):
            w.cursor_blink = blink
        self.query_one(TextArea).cursor_blink = blink
        self.query_one("#tag-label", Input).focus()

    def _error(self, message: str) -> None:
        self.query_one("#tag-error", Static).update(Text(message))

    def form(self) -> TagForm | None:
        """The form's value, or None (with the reason shown) when a field is invalid."""
        label = self.query_one("#tag-label", Input).value.strip()
        if not label:
            self._error("A label is required.")
            self.query_one("#tag-label", Input).focus()
            return None
        try:
            quality = parse_quality(self.query_one("#tag-quality", Input).value)
        except ValueError:
            self._error("Quality must be a number between 0 and 1 (or empty).")
            self.query_one("#tag-quality", Input).focus()
            return None
        row = None
        if self._ask_row:
            box = self.query_one("#tag-row-index", Input)
            try:
                row = int(box.value.strip() or "0")
                if row < 0 or (self._rows is not None and row >= self._rows):
                    raise ValueError
            except ValueError:
                limit = f"0–{self._rows - 1}" if self._rows else "0 or more"
                self._error(f"Row must be a whole number in {limit}.")
                box.focus()
                return None
        category = self.query_one("#tag-category", Input).value.strip() or None
        notes = self.query_one("#tag-notes", TextArea).text.strip() or None
        reference = self.query_one("#tag-reference", Checkbox).value
        return TagForm(label, category, quality, reference, notes, row)

    def action_save(self) -> None:
        form = self.form()
        if form is not None:
            self.dismiss(form)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#tag-save")
    def _save(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#tag-cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()
