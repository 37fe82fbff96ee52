"""Typed messages that carry worker results back to the UI thread.

Workers (thread workers: the service is synchronous) never touch widgets; they
post one of these and an `@on` handler on the app updates the panes. Every
message names what it is about (a generation or the dataset key) so a late
answer for something no longer on screen is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


class DatasetsLoaded(Message):
    """Count and first page for the current filter."""

    def __init__(self, filter_text: str, total: int, rows: list[Any], select_path: str | None = None) -> None:
        super().__init__()
        self.filter_text = filter_text
        self.total = total
        self.rows = rows
        self.select_path = select_path


class DatasetsPage(Message):
    def __init__(self, generation: int, page: int, rows: list[Any]) -> None:
        super().__init__()
        self.generation = generation
        self.page = page
        self.rows = rows


class ScanFinished(Message):
    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class DatasetResolved(Message):
    """The catalog record of a file opened by path (from the command line)."""

    def __init__(self, key: str, dataset: Any) -> None:
        super().__init__()
        self.key = key
        self.dataset = dataset


class ReportLoaded(Message):
    """`FileReport` (inspection + checks) for the open dataset."""

    def __init__(self, key: str, report: Any) -> None:
        super().__init__()
        self.key = key
        self.report = report


class ResultsLoaded(Message):
    def __init__(self, key: str, kind: str, payload: Any) -> None:
        super().__init__()
        self.key = key
        self.kind = kind
        self.payload = payload


class PlotLoaded(Message):
    def __init__(self, key: str, mode: str, payload: Any, caption: str) -> None:
        super().__init__()
        self.key = key
        self.mode = mode
        self.payload = payload
        self.caption = caption


class TagsLoaded(Message):
    def __init__(self, key: str, tags: list[Any]) -> None:
        super().__init__()
        self.key = key
        self.tags = tags


class TagChanged(Message):
    """A tag was saved or deleted (the catalog and its outbox are written)."""

    def __init__(self, key: str, action: str, tag: Any | None) -> None:
        super().__init__()
        self.key = key
        self.action = action
        self.tag = tag


class RunsLoaded(Message):
    def __init__(self, runs: list[Any]) -> None:
        super().__init__()
        self.runs = runs


class RunDetailLoaded(Message):
    def __init__(self, run: Any, iterations: list[Any], dataset: Any | None) -> None:
        super().__init__()
        self.run = run
        self.iterations = iterations
        self.dataset = dataset


class StatusLoaded(Message):
    def __init__(self, status: Any) -> None:
        super().__init__()
        self.status = status


class SyncFinished(Message):
    def __init__(self, result: Any, error: str | None) -> None:
        super().__init__()
        self.result = result
        self.error = error


@dataclass(frozen=True)
class Failure:
    what: str  # "datasets", "report", "results", "plot", "tags", "tag", "status", "theme"
    key: str | None
    message: str


class WorkFailed(Message):
    """A worker met an exception it could not turn into a result; shown in place."""

    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure
