"""A virtual table: shows `total` rows without ever holding them all.

Rows live in pages fetched on demand (the owner answers `PageNeeded` from a
worker and calls `set_page`). Only the pages near the viewport are kept
(LRU), rendered lines are cached, and moving the cursor repaints exactly the
two lines that changed, so a keystroke costs the same with 10 rows or 10 000
and nothing is redrawn wholesale over a slow SSH link.

The first line is a sticky header. Cells are `rich.text.Text` made by the
owner's `format_row`, never markup strings, so a `[` in a file name is shown
as a `[`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # None: share the remaining width
    justify: str = "left"
    min_width: int = 8
    shorten: str = "end"  # "middle": keep both ends of long values (paths)
    priority: int = 9  # when the table is too narrow, fixed columns go lowest priority first


class VirtualTable(ScrollView, can_focus=True):
    """A keyboard-driven, lazily paged table with a sticky header."""

    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        background: $surface;
        scrollbar-gutter: stable;
    }
    VirtualTable > .virtual-table--header {
        text-style: bold;
        color: $text-muted;
        background: $panel;
    }
    VirtualTable > .virtual-table--cursor {
        background: $block-cursor-blurred-background;
    }
    VirtualTable:focus > .virtual-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    VirtualTable > .virtual-table--placeholder {
        color: $text-disabled;
    }
    VirtualTable > .virtual-table--empty {
        color: $text-muted;
        text-style: italic;
    }
    """

    COMPONENT_CLASSES = {
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--placeholder",
        "virtual-table--empty",
    }

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor: reactive[int] = reactive(0, repaint=False, init=False)

    class PageNeeded(Message):
        """The table wants rows [page * page_size, +page_size) for `generation`."""

        def __init__(self, table: VirtualTable, page: int, generation: int) -> None:
            super().__init__()
            self.table = table
            self.page = page
            self.generation = generation
            self.offset = page * table.page_size
            self.limit = table.page_size

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Highlighted(Message):
        """The cursor row (`moved`: the cursor moved, rather than the rows being reloaded)."""

        def __init__(self, table: VirtualTable, index: int, row: Any | None, moved: bool = True) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.row = row
            self.moved = moved

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Selected(Highlighted):
        pass

    def __init__(
        self,
        columns: Sequence[Column],
        format_row: Callable[[Any], Sequence[Text]],
        *,
        page_size: int = 100,
        max_pages: int = 32,
        empty_text: str = "Nothing to show.",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self.format_row = format_row
        self.page_size = page_size
        self.max_pages = max_pages
        self.empty_text = empty_text
        self.total = 0
        self.generation = 0
        self.loaded = False  # False until the first reset(): shows nothing, not "empty"
        self._pages: OrderedDict[int, list[Any]] = OrderedDict()
        self._requested: set[int] = set()
        self._line_cache: LRUCache[tuple, Strip] = LRUCache(1024)
        self._widths: list[int] = []
        self._widths_for = -1

    # -- data ------------------------------------------------------------------
    def reset(self, total: int, first_page: Sequence[Any] | None = None, *, cursor: int | None = 0) -> int:
        """Start over with `total` rows (optionally page 0 already fetched); returns the generation."""
        self.generation += 1
        self.total = max(0, int(total))
        self.loaded = True
        self._pages.clear()
        self._requested.clear()
        self._line_cache.clear()
        if first_page is not None:
            self._pages[0] = list(first_page)
        self.virtual_size = Size(self.size.width, self.total + 1)
        new_cursor = 0 if cursor is None else max(0, min(cursor, self.total - 1))
        self.set_reactive(VirtualTable.cursor, new_cursor)
        self.scroll_to(y=0, animate=False, immediate=True) if new_cursor == 0 else self._scroll_cursor_visible()
        self.refresh()
        self._announce(moved=False)
        return self.generation

    def set_page(self, generation: int, page: int, rows: Sequence[Any]) -> None:
        """Deliver a page asked for with PageNeeded; stale generations are ignored."""
        if generation != self.generation:
            return
        self._requested.discard(page)
        self._pages[page] = list(rows)
        self._pages.move_to_end(page)
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)
        self._line_cache.clear()
        start = page * self.page_size
        self.refresh_lines(start + 1, len(rows))
        if start <= self.cursor < start + len(rows):
            self._announce(moved=False)

    def row_at(self, index: int) -> Any | None:
        page, off = divmod(index, self.page_size)
        rows = self._pages.get(page)
        if rows is None or off >= len(rows):
            return None
        return rows[off]

    @property
    def cursor_row(self) -> Any | None:
        return self.row_at(self.cursor) if self.total else None

    def update_row(self, index: int, row: Any) -> None:
        """Replace one cached row (e.g. after tagging) and repaint just that line."""
        page, off = divmod(index, self.page_size)
        rows = self._pages.get(page)
        if rows is not None and off < len(rows):
            rows[off] = row
            self._line_cache.clear()
            self.refresh_line(index + 1)

    def find_index(self, predicate: Callable[[Any], bool]) -> int | None:
        for page, rows in self._pages.items():
            for off, row in enumerate(rows):
                if predicate(row):
                    return page * self.page_size + off
        return None

    # -- cursor ---------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._scroll_cursor_visible()
        self._announce()

    def _announce(self, moved: bool = True) -> None:
        # sent by the table itself even when an ancestor's handler caused it (reset from the app),
        # otherwise Textual would not bubble it back up to that ancestor
        if self.total:
            message = self.Highlighted(self, self.cursor, self.cursor_row, moved)
        else:
            message = self.Highlighted(self, -1, None, moved)
        self.post_message(message.set_sender(self))

    def _move(self, index: int) -> None:
        if self.total:
            self.cursor = max(0, min(index, self.total - 1))

    def _scroll_cursor_visible(self) -> None:
        # row i is virtual line i + 1; line 0 is the header, always painted on top
        height = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_page_up(self) -> None:
        self._move(self.cursor - max(1, self.scrollable_content_region.height - 2))

    def action_page_down(self) -> None:
        self._move(self.cursor + max(1, self.scrollable_content_region.height - 2))

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(self.total - 1)

    def action_select(self) -> None:
        if self.total:
            self.post_message(self.Selected(self, self.cursor, self.cursor_row).set_sender(self))

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y - 1
        if event.y >= 1 and 0 <= index < self.total:
            if index == self.cursor and event.chain >= 2:
                self.action_select()
            self.cursor = index

    # -- rendering --------------------------------------------------------------
    def _column_widths(self, width: int) -> list[int]:
        """Column widths for `width` cells; 0 for a column dropped to make room.

        Flexible columns share what the fixed ones leave, down to their
        `min_width`; if even that does not fit, fixed columns are dropped in
        order of `priority` (lowest first) rather than cut off at the edge.
        """
        if width == self._widths_for:
            return self._widths
        shown = list(self.columns)

        def needed(cols: list[Column]) -> int:
            return sum(c.width if c.width is not None else c.min_width for c in cols) + len(cols) - 1

        for col in sorted((c for c in self.columns if c.width is not None), key=lambda c: c.priority):
            if needed(shown) <= width:
                break
            shown.remove(col)
        fixed = sum(c.width for c in shown if c.width is not None)
        flex = [c for c in shown if c.width is None]
        spare = max(0, width - fixed - (len(shown) - 1))
        widths = [
            0 if c not in shown else (c.width if c.width is not None else max(c.min_width, spare // max(1, len(flex))))
            for c in self.columns
        ]
        self._widths, self._widths_for = widths, width
        return widths

    def _compose_line(self, cells: Sequence[Text], width: int) -> Text:
        widths = self._column_widths(width)
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        first = True
        for i, (col, w) in enumerate(zip(self.columns, widths)):
            if w == 0:
                continue
            if not first:
                line.append(" ")
            first = False
            cell = cells[i].copy() if i < len(cells) else Text("")
            cell.no_wrap = True
            if cell.cell_len > w:
                if col.shorten == "middle" and w > 1:
                    head = (w - 1) // 2
                    tail = w - 1 - head
                    plain = cell.plain
                    cell = Text(plain[:head] + "…" + plain[len(plain) - tail:], style=cell.style, no_wrap=True)
                else:
                    cell.truncate(w, overflow="ellipsis")
            pad = w - cell.cell_len
            if col.justify == "right":
                line.append(" " * pad)
                line.append_text(cell)
            else:
                line.append_text(cell)
                line.append(" " * pad)
        return line

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop_extend(0, width, Style.null())
        return strip.apply_style(style) if style else strip

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            key = ("header", width, self.generation)
            if key not in self._line_cache:
                header = self._compose_line([Text(c.label) for c in self.columns], width)
                self._line_cache[key] = self._strip(header, width, base + self.get_component_rich_style("virtual-table--header"))
            return self._line_cache[key]
        index = int(self.scroll_y) + y - 1
        if index >= self.total:
            if index == 0 and self.loaded:
                key = ("empty", width, self.generation)
                if key not in self._line_cache:
                    text = Text(" " + self.empty_text)
                    self._line_cache[key] = self._strip(text, width, base + self.get_component_rich_style("virtual-table--empty"))
                return self._line_cache[key]
            return Strip.blank(width, base)
        is_cursor = index == self.cursor
        key = (index, width, is_cursor, self.has_focus, self.generation)
        cached = self._line_cache.get(key)
        if cached is not None:
            return cached
        row = self.row_at(index)
        if row is None:
            self._request(index // self.page_size)
            text = Text(" …", no_wrap=True)
            style = base + self.get_component_rich_style("virtual-table--placeholder")
            strip = self._strip(text, width, style)
            if is_cursor:
                strip = strip.apply_style(self.get_component_rich_style("virtual-table--cursor"))
            return strip  # not cached: it changes when the page arrives
        text = self._compose_line(self.format_row(row), width)
        style = base
        strip = self._strip(text, width, style)
        if is_cursor:
            strip = Strip([Segment(s.text, (s.style or Style.null()) + self.get_component_rich_style("virtual-table--cursor"), s.control) for s in strip])
        self._line_cache[key] = strip
        return strip

    def _request(self, page: int) -> None:
        if page in self._requested or page in self._pages:
            return
        self._requested.add(page)
        # Called while the screen renders: post from our own message loop, not the
        # screen's (a message "sent" by the screen would not bubble back up through it).
        self.call_later(self._ask_for_page, page, self.generation)

    def _ask_for_page(self, page: int, generation: int) -> None:
        if generation == self.generation and page in self._requested:
            self.post_message(self.PageNeeded(self, page, generation))

    def on_focus(self) -> None:
        self.refresh_line(self.cursor + 1)

    def on_blur(self) -> None:
        self.refresh_line(self.cursor + 1)

    def on_resize(self) -> None:
        self._line_cache.clear()
        self.virtual_size = Size(self.size.width, self.total + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()

    def visible_region(self) -> Region:
        return Region(0, int(self.scroll_y), self.size.width, self.size.height)
