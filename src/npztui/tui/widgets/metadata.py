"""The Metadata pane: a lazy tree of the file's metadata and a table of its arrays.

Children are created when a node is first expanded, and long lists/dicts show
their first `MAX_CHILDREN` entries plus a "… N more" leaf, so a hostile file
with a million-entry list costs nothing until someone opens it. Every label is
a `rich.text.Text`: keys and values come from the file and are never markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static, Tree
from textual.widgets.tree import TreeNode

from npztui.textfmt import human_bytes, shape_str, shorten

MAX_CHILDREN = 200
MAX_VALUE_CHARS = 120


@dataclass
class _NodeData:
    key: str | None  # dotted path from the root, e.g. "physics_parameters.N"
    value: Any
    populated: bool = False


def _scalar_text(value: Any) -> Text:
    if value is None:
        return Text("null", style="italic")
    if isinstance(value, bool):
        return Text("true" if value else "false", style="bold")
    if isinstance(value, (int, float)):
        return Text(repr(value), style="bold")
    s = value if isinstance(value, str) else str(value)
    s = s.replace("\n", "⏎")
    return Text(shorten(s, MAX_VALUE_CHARS))


def _is_container(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def _summary(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"{{{len(value)}}}"
    return f"[{len(value)}]"


def node_label(name: str, value: Any) -> Text:
    label = Text(name, style="bold")
    if _is_container(value):
        label.append(" " + _summary(value), style="dim")
    else:
        label.append(": ")
        label.append_text(_scalar_text(value))
    return label


class MetadataTree(Tree[_NodeData]):
    """The metadata as a tree; `select_key("a.b")` opens and highlights a dotted path."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("metadata"), _NodeData(None, None, True), id=id)
        self.show_root = False
        self.guide_depth = 2

    def set_metadata(self, data: Mapping[str, Any] | None, *, source: str | None, encoding: str | None) -> None:
        self.clear()
        root = self.root
        if data is None:
            root.set_label(Text("metadata"))
            root.add_leaf(Text("no metadata in this file", style="italic"), _NodeData(None, None, True))
            self.root.expand()
            return
        origin = f"{source} ({encoding})" if source else "metadata"
        root.set_label(Text(origin))
        root.data = _NodeData(None, data, False)
        self._populate(root)
        root.expand()
        # open the top level one step so the common keys are visible at once
        for child in root.children:
            if child.data and isinstance(child.data.value, Mapping) and len(child.data.value) <= 30:
                self._populate(child)
                child.expand()

    def _populate(self, node: TreeNode[_NodeData]) -> None:
        data = node.data
        if data is None or data.populated:
            return
        data.populated = True
        value = data.value
        items: Sequence[tuple[str, Any, bool]]  # (label, value, is_list_index)
        if isinstance(value, Mapping):
            items = [(str(k), v, False) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            items = [(f"[{i}]", v, True) for i, v in enumerate(value)]
        else:
            return
        for name, child, is_index in items[:MAX_CHILDREN]:
            if data.key is None:
                key = name
            else:
                key = f"{data.key}{name}" if is_index else f"{data.key}.{name}"
            nd = _NodeData(key, child)
            if _is_container(child):
                node.add(node_label(name, child), nd)
            else:
                nd.populated = True
                node.add_leaf(node_label(name, child), nd)
        if len(items) > MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(items) - MAX_CHILDREN} more", style="italic dim"), _NodeData(None, None, True))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[_NodeData]) -> None:
        if event.node.tree is self:
            self._populate(event.node)

    def find_key(self, key: str) -> TreeNode[_NodeData] | None:
        """The node for a dotted key (populating along the way), or the closest ancestor.

        Walks down by prefix (a child whose key is `key`, or a prefix of it
        followed by `.` or `[`), so keys containing dots or brackets still resolve.
        """
        node = self.root
        self._populate(node)
        best = None
        while True:
            exact = next((c for c in node.children if c.data and c.data.key == key), None)
            if exact is not None:
                self._populate(exact)
                return exact
            nxt = next(
                (c for c in node.children
                 if c.data and c.data.key and key.startswith(c.data.key) and key[len(c.data.key)] in ".["),
                None,
            )
            if nxt is None:
                return best
            best = node = nxt
            self._populate(node)

    def resolve_short_key(self, key: str, max_depth: int = 4) -> str | None:
        """A short key (`nphotons`, `grid_size`) as the dotted path where it occurs, shallowest first."""
        data = self.root.data.value if self.root.data is not None else None
        if not isinstance(data, Mapping) or "." in key:
            return None
        level: list[tuple[str, Mapping[str, Any]]] = [("", data)]
        for _ in range(max_depth):
            nxt: list[tuple[str, Mapping[str, Any]]] = []
            for prefix, mapping in level:
                for k, v in list(mapping.items())[:MAX_CHILDREN]:
                    path = f"{prefix}.{k}" if prefix else str(k)
                    if str(k) == key:
                        return path
                    if isinstance(v, Mapping):
                        nxt.append((path, v))
            level = nxt
        return None

    def select_key(self, key: str) -> bool:
        """Expand down to `key`, move the cursor there; True if the key exists.

        A short key the checks use (`nphotons`) is found where it lives
        (`physics_parameters.nphotons`); a missing key selects its closest parent.
        """
        node = self.find_key(key)
        if node is None or node.data is None or node.data.key != key:
            full = self.resolve_short_key(key)
            if full is not None:
                key = full
                node = self.find_key(full)
        if node is None:
            return False
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.move_cursor(node)
        self.call_after_refresh(self.scroll_to_node, node, animate=False)
        return node.data is not None and node.data.key == key

    @property
    def cursor_key(self) -> str | None:
        node = self.cursor_node
        return node.data.key if node is not None and node.data is not None else None


class ArraysTable(DataTable):
    """Members of the file: name, shape, dtype, stored and uncompressed size."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = False
        self.add_column(Text("array"), key="name")
        self.add_column(Text("shape"), key="shape")
        self.add_column(Text("dtype"), key="dtype")
        self.add_column(Text("stored", justify="right"), key="stored")
        self.add_column(Text("size", justify="right"), key="size")
        self.add_column(Text("zip"), key="zip")

    def set_arrays(self, arrays: Sequence[Any]) -> None:
        self.clear()
        for a in arrays:
            flags = a.compression + (" F" if a.fortran_order else "")
            self.add_row(
                Text(shorten(a.name, 40)),
                Text(shape_str(a.shape) if a.shape else "()"),
                Text(a.dtype.str),
                Text(human_bytes(a.stored_bytes), justify="right"),
                Text(human_bytes(a.nbytes), justify="right"),
                Text(flags),
                key=a.name,
            )


class MetadataPane(Vertical):
    """Source line, metadata tree, arrays table (or the file's error in their place)."""

    def compose(self) -> ComposeResult:
        yield Static(Text("Select a dataset to see its metadata."), id="metadata-source", classes="pane-caption")
        yield MetadataTree(id="metadata-tree")
        yield ArraysTable(id="arrays-table")

    def show_loading(self, name: str) -> None:
        self.query_one("#metadata-source", Static).update(Text(f"Reading {name} …", style="italic"))

    def show_error(self, name: str, code: str, message: str) -> None:
        caption = Text()
        caption.append(f" {code} ", style="bold reverse")
        caption.append(" ")
        caption.append(f"{name}: {message}")
        self.query_one("#metadata-source", Static).update(caption)
        tree = self.query_one(MetadataTree)
        tree.clear()
        tree.root.add_leaf(Text(f"{code}: {message}"))
        tree.root.expand()
        self.query_one(ArraysTable).clear()
        self.add_class("-error")

    def show_report(self, name: str, report: Any) -> None:
        self.remove_class("-error")
        meta = report.meta
        info = report.info
        caption = Text()
        caption.append(name, style="bold")
        caption.append(f"  {report.kind or '?'}", style="italic")
        if info is not None:
            caption.append(f"  {len(info.arrays)} arrays, {human_bytes(info.size)}")
        if meta is not None and meta.source:
            caption.append(f"  metadata: {meta.source} ({meta.encoding})", style="dim")
        elif meta is not None:
            caption.append("  no metadata", style="dim")
        self.query_one("#metadata-source", Static).update(caption)
        self.query_one(MetadataTree).set_metadata(
            meta.data if meta is not None else None,
            source=meta.source if meta is not None else None,
            encoding=meta.encoding if meta is not None else None,
        )
        self.query_one(ArraysTable).set_arrays(info.arrays if info is not None else ())
