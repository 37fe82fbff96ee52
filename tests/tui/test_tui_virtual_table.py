"""The virtual table behind the Datasets pane: paging, cursor, lazy rendering, text-only cells."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult

from test_tui_support import async_test, screen_text

from npztui.tui.widgets.virtual_table import Column, VirtualTable


@dataclass
class Item:
    n: int
    name: str


class TableApp(App):
    def __init__(self, total: int) -> None:
        super().__init__()
        self.items = [Item(i, f"[b]item {i}[/b]") for i in range(total)]
        self.requests: list[int] = []
        self.selected: list[int] = []

    def compose(self) -> ComposeResult:
        yield VirtualTable(
            [Column("n", "#", 6, "right"), Column("name", "name", None)],
            lambda it: [Text(str(it.n)), Text(it.name)],
            page_size=50,
            max_pages=4,
        )

    def on_mount(self) -> None:
        table = self.query_one(VirtualTable)
        table.reset(len(self.items), self.items[:50])
        table.focus()

    @on(VirtualTable.PageNeeded)
    def _page(self, m: VirtualTable.PageNeeded) -> None:
        self.requests.append(m.page)
        m.table.set_page(m.generation, m.page, self.items[m.offset : m.offset + m.limit])

    @on(VirtualTable.Selected)
    def _sel(self, m: VirtualTable.Selected) -> None:
        self.selected.append(m.index)


@async_test
async def test_ten_thousand_rows_are_paged_not_loaded():
    app = TableApp(10_000)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)
        assert table.total == 10_000
        assert len(table._pages) == 1  # only what is on screen
        text = screen_text(app)
        assert "[b]item 0[/b]" in text  # cells are text, never markup
        await pilot.press("j", "j", "down")
        assert table.cursor == 3
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor == 9_999
        assert "item 9999" in screen_text(app)
        assert len(table._pages) <= table.max_pages
        await pilot.press("home", "pagedown")
        assert 0 < table.cursor < 30
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == [table.cursor]


@async_test
async def test_stale_pages_are_ignored_after_reset():
    app = TableApp(200)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)
        old = table.generation
        table.reset(3, app.items[:3])
        table.set_page(old, 1, app.items[50:100])  # an answer for the old filter
        assert 1 not in table._pages
        await pilot.press("end")
        assert table.cursor == 2


@async_test
async def test_empty_state():
    app = TableApp(0)
    async with app.run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)
        assert table.cursor_row is None
        await pilot.press("j", "enter")
        assert app.selected == []
        assert "Nothing to show." in screen_text(app)


def test_columns_are_dropped_by_priority_when_too_narrow():
    table = VirtualTable(
        [Column("name", "name", None, min_width=10), Column("a", "a", 8, priority=1),
         Column("b", "b", 8, priority=5), Column("c", "c", 8, priority=3)],
        lambda it: [],
    )
    assert table._column_widths(60) == [33, 8, 8, 8]
    table._widths_for = -1
    assert table._column_widths(30) == [12, 0, 8, 8]  # a (priority 1) goes first
    table._widths_for = -1
    assert table._column_widths(25) == [16, 0, 8, 0]  # then c (3); b (5) stays
    table._widths_for = -1
    line = table._compose_line([Text("x" * 20), Text("A"), Text("B"), Text("C")], 25)
    assert "A" not in line.plain and "C" not in line.plain and "B" in line.plain


def test_status_shows_server_host_never_credentials():
    from npztui.tui.widgets.status import server_host

    assert server_host("postgresql://alice:***@db.example.org:5433/npz?sslmode=require") == "db.example.org:5433/npz"
    assert server_host("user=alice dbname=npz host=/tmp/sock port=5432 password=***") == "/tmp/sock:5432/npz"
    assert server_host("") == "localhost"
