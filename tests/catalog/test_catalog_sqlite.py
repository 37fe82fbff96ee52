"""The local SQLite catalog: datasets, tags, configurations, sessions, outbox atomicity, concurrency."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from catalog_helpers import outbox_rows, record

from npztui.catalog import (
    Catalog, CatalogError, Dataset, NotFound, PermissionDenied, ValidationError, open_catalog,
)
from npztui.catalog.schema import TAGS

# ----------------------------------------------------------------------------- datasets


def test_upsert_is_keyed_by_owner_and_path_and_skips_identical_records(cat: Catalog) -> None:
    first = cat.upsert_dataset(record(1))
    assert cat.upsert_dataset(record(1)) == first
    assert outbox_rows(cat) == [("datasets", first, "upsert")]  # an unchanged rescan writes nothing

    assert cat.upsert_dataset(record(1, size=5000)) == first
    assert len(outbox_rows(cat)) == 2
    assert cat.pending_outbox_count() == 1  # one row waiting, whatever the number of edits
    got = cat.get_dataset(first)
    assert got is not None and got.size == 5000 and got.filename == "grid_0001.npz"
    assert got.metadata == {"grid_size": 5, "freq_min": 0.1, "freq_max": 1e5, "nested": {"i": 1}}
    assert got.owner == "tester" and got.sync_status == "pending" and got.rev == 0


def test_upsert_accepts_dataclass_records_and_rejects_bad_ones(cat: Catalog) -> None:
    ds_id = cat.upsert_dataset(Dataset(path="a/b.npz", data_root="/r", kind="generic", rows=3))
    got = cat.dataset_by_path("/r", "a/b.npz")
    assert got is not None and got.id == ds_id and got.rows == 3
    with pytest.raises(ValidationError) as err:
        cat.upsert_dataset(record(2, storage_location="tape"))
    assert err.value.field == "storage_location"
    with pytest.raises(ValidationError):
        cat.upsert_dataset({"path": ""})
    with pytest.raises(ValidationError, match="unknown dataset fields"):
        cat.upsert_dataset({"path": "x.npz", "colour": "red"})


def test_non_finite_metadata_values_are_stored_as_null(cat: Catalog) -> None:
    ds_id = cat.upsert_dataset(record(1, metadata={"best": math.nan, "inf": [1.0, math.inf]}))
    got = cat.get_dataset(ds_id)
    assert got is not None and got.metadata == {"best": None, "inf": [1.0, None]}


def test_rescan_keeps_user_fields(cat: Catalog) -> None:
    ds_id = cat.upsert_dataset(record(1))
    cfg = cat.add_config("ref", {"Rsh": 5005.0})
    cat.link_dataset_config(ds_id, cfg)
    cat.update_dataset(ds_id, is_public=True)
    cat.upsert_dataset(record(1, size=1))  # the scanner knows nothing about links
    got = cat.get_dataset(ds_id)
    assert got is not None and got.circuit_config_id == cfg and got.is_public and got.size == 1
    with cat.store.lock:
        view = cat.store.conn.execute(
            "SELECT config_name FROM datasets_with_config WHERE id = ?", (ds_id,)).fetchone()
    assert view == ("ref",)


def test_list_and_count_filter_page_and_order_in_sql(cat: Catalog) -> None:
    ids = cat.upsert_datasets([record(i) for i in range(25)])
    cat.add_tag(ids[7], 1, "golden-model", category="keep")
    assert cat.count_datasets() == 25
    pages = [cat.list_datasets(limit=10, offset=o) for o in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [d.path for p in pages for d in p] == sorted(f"runs/grid_{i:04d}.npz" for i in range(25))

    assert cat.count_datasets(kind="circuit") == 13
    assert {d.kind for d in cat.list_datasets(kind="ptycho", limit=None)} == {"ptycho"}
    assert [d.path for d in cat.list_datasets("GRID_001")] == [f"runs/grid_{i:04d}.npz" for i in range(10, 20)]
    assert cat.count_datasets("grid_001") == 10
    tagged = cat.list_datasets("golden")  # matches tag labels too
    assert [d.id for d in tagged] == [ids[7]] and tagged[0].tag_count == 1
    assert cat.count_datasets("keep circuit") == 0  # every term must match (dataset 7 is ptycho)
    assert cat.count_datasets("%") == 0  # LIKE wildcards are literal
    by_size = cat.list_datasets(order_by="-size", limit=3)
    assert [d.size for d in by_size] == [1024, 1023, 1022]
    with pytest.raises(ValidationError):
        cat.list_datasets(order_by="size; DROP TABLE datasets")


def test_vanished_files_become_unavailable_not_deleted(cat: Catalog) -> None:
    ids = cat.upsert_datasets([record(i) for i in range(3)])
    tag = cat.add_tag(ids[2], 1, "keep me")
    assert cat.file_state("/data/npz") == {
        f"runs/grid_{i:04d}.npz": (1000 + i, 1_700_000_000_000_000_000 + i) for i in range(3)
    }
    assert cat.file_state("/elsewhere") == {}

    present = ["runs/grid_0000.npz", "runs/grid_0001.npz"]
    assert cat.mark_unavailable("/data/npz", present) == 1
    gone = cat.get_dataset(ids[2])
    assert gone is not None and not gone.is_available and not gone.deleted
    assert cat.get_tag(tag) is not None
    assert cat.count_datasets(available=False) == 1 and cat.count_datasets() == 3
    assert cat.mark_unavailable("/data/npz", present) == 0  # nothing new
    # the file comes back: available again
    assert cat.mark_unavailable("/data/npz", present + ["runs/grid_0002.npz"]) == 0
    back = cat.get_dataset(ids[2])
    assert back is not None and back.is_available


def test_delete_dataset_tombstones_it_and_my_tags(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1))
    tag = cat.add_tag(ds, 3, "x")
    cat.delete_dataset(ds)
    assert cat.get_dataset(ds) is None and cat.count_datasets() == 0
    dead = cat.get_dataset(ds, include_deleted=True)
    assert dead is not None and dead.deleted
    assert cat.get_tag(tag) is None
    assert ("tags", tag, "delete") in outbox_rows(cat)
    assert cat.upsert_dataset(record(1)) == ds  # rescanning the file revives the same record
    assert cat.get_dataset(ds) is not None


# ----------------------------------------------------------------------------- tags


def test_tag_crud_and_tombstones(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1))
    tag_id = cat.add_tag(ds, 1, "best fit", category="candidate", quality_score=0.75, is_reference=True,
                         resnorm=0.0123, parameters={"Rsh": 5005.0, "Ca": 2.5e-5},
                         frequency_index_start=0, frequency_index_end=49)
    tag = cat.get_tag(tag_id)
    assert tag is not None and tag.label == "best fit" and tag.quality_score == 0.75 and tag.is_reference
    assert tag.parameters == {"Rsh": 5005.0, "Ca": 2.5e-5} and tag.dataset_path == "runs/grid_0001.npz"
    assert cat.tag_for_row(ds, 1) == tag

    updated = cat.update_tag(tag_id, label="renamed", quality_score=None, notes="n")
    assert (updated.label, updated.quality_score, updated.notes) == ("renamed", None, "n")
    assert updated.updated_at > tag.updated_at

    with pytest.raises(ValidationError, match="already tagged"):
        cat.add_tag(ds, 1, "again")
    cat.add_tag(ds, 2, "second")
    assert [t.row_index for t in cat.list_tags(ds)] == [1, 2]

    cat.delete_tag(tag_id)
    assert cat.get_tag(tag_id) is None
    dead = cat.get_tag(tag_id, include_deleted=True)
    assert dead is not None and dead.deleted
    assert [t.row_index for t in cat.list_tags()] == [2]
    assert outbox_rows(cat)[-1] == ("tags", tag_id, "delete")
    cat.delete_tag(tag_id)  # deleting twice is harmless
    assert cat.add_tag(ds, 1, "revived") == tag_id  # same row: the tombstone comes back
    with pytest.raises(NotFound):
        cat.add_tag("00000000-0000-0000-0000-000000000000", 1, "nowhere")
    with pytest.raises(NotFound):
        cat.update_tag("nope", label="x")


@pytest.mark.parametrize("bad", [1.5, -0.01, math.nan, math.inf, "high", True, [0.5]])
def test_quality_score_must_be_between_0_and_1(cat: Catalog, bad: object) -> None:
    ds = cat.upsert_dataset(record(1))
    with pytest.raises(ValidationError) as err:
        cat.add_tag(ds, 1, "q", quality_score=bad)  # type: ignore[arg-type]
    assert err.value.field == "quality_score"
    assert cat.list_tags() == [] and outbox_rows(cat) == [("datasets", ds, "upsert")]

    tag = cat.add_tag(ds, 1, "q", quality_score=0.5)
    with pytest.raises(ValidationError):
        cat.update_tag(tag, quality_score=bad)
    assert cat.get_tag(tag).quality_score == 0.5  # type: ignore[union-attr]


def test_quality_bounds_are_inclusive_and_enforced_by_the_database_too(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1))
    assert cat.get_tag(cat.add_tag(ds, 1, "zero", quality_score=0)).quality_score == 0.0  # type: ignore[union-attr]
    assert cat.get_tag(cat.add_tag(ds, 2, "one", quality_score=1)).quality_score == 1.0  # type: ignore[union-attr]
    with cat.store.lock, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        cat.store.conn.execute(
            "INSERT INTO tags (id, owner, dataset_id, row_index, label, quality_score) VALUES (?, ?, ?, ?, ?, ?)",
            ("raw", "tester", ds, 9, "raw", 1.5),
        )


def test_frequency_span_and_labels_are_validated(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1))
    with pytest.raises(ValidationError) as err:
        cat.add_tag(ds, 1, "x", frequency_index_start=10, frequency_index_end=2)
    assert err.value.field == "frequency_index_end"
    with pytest.raises(ValidationError):
        cat.add_tag(ds, 1, "   ")
    with pytest.raises(ValidationError):
        cat.add_tag(ds, -1, "x")


def test_rows_of_other_owners_are_read_only(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1, is_public=True))
    mine = cat.add_tag(ds, 1, "mine")
    # a public tag of someone else, as a pull would have stored it
    foreign = dict(cat.store.get(TAGS, mine), id="f0f0", owner="bob", row_index=2, label="bob's")  # type: ignore[arg-type]
    with cat.store.write():
        cat.store.insert(TAGS, foreign)
    assert {t.owner for t in cat.list_tags(ds)} == {"tester", "bob"}
    with pytest.raises(PermissionDenied):
        cat.update_tag("f0f0", label="stolen")
    with pytest.raises(PermissionDenied):
        cat.delete_tag("f0f0")
    assert cat.get_tag("f0f0").label == "bob's"  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- outbox atomicity


def test_outbox_failure_rolls_back_the_change(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1))
    before = outbox_rows(cat)
    with cat.store.lock:
        cat.store.conn.execute(
            "CREATE TEMP TRIGGER fail_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected'); END")
    with pytest.raises(CatalogError, match="injected"):
        cat.add_tag(ds, 1, "never")
    with pytest.raises(CatalogError, match="injected"):
        cat.upsert_dataset(record(1, size=1))
    with cat.store.lock:
        cat.store.conn.execute("DROP TRIGGER fail_outbox")
    assert cat.list_tags() == []
    assert cat.get_dataset(ds).size == 1001  # type: ignore[union-attr]
    assert outbox_rows(cat) == before


def test_row_write_failure_leaves_no_outbox_entry(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = cat.upsert_dataset(record(1))
    real_update = cat.store.update

    def crash_after_write(table, row):  # the row is written, then the process "dies"
        real_update(table, row)
        raise RuntimeError("power cut")

    monkeypatch.setattr(cat.store, "update", crash_after_write)
    with pytest.raises(RuntimeError):
        cat.upsert_dataset(record(1, size=77))
    monkeypatch.undo()
    assert cat.get_dataset(ds).size == 1001  # type: ignore[union-attr]
    assert len(outbox_rows(cat)) == 1


def test_a_batch_upsert_is_all_or_nothing(cat: Catalog) -> None:
    with pytest.raises(ValidationError):
        cat.upsert_datasets([record(1), record(2), record(3, size=-5)])
    assert cat.count_datasets() == 0 and outbox_rows(cat) == []


# ----------------------------------------------------------------------------- concurrency


def test_two_threads_writing_through_their_own_connections_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    open_catalog(path, owner="tester").close()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with open_catalog(path, busy_timeout=30) as c:
                barrier.wait()
                for i in range(60):
                    ds = c.upsert_dataset(record(n * 1000 + i))
                    c.add_tag(ds, 1, f"w{n}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_catalog(path) as c:
        assert c.count_datasets() == 120
        assert len(c.list_tags()) == 120
        assert len(outbox_rows(c)) == 240


def _process_writer(path: str, n: int, start: "multiprocessing.synchronize.Event") -> None:
    start.wait(30)
    with open_catalog(path, busy_timeout=30) as c:
        for i in range(40):
            c.upsert_dataset(record(n * 1000 + i))


def test_two_processes_writing_at_once_both_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "procs" / "catalog.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_process_writer, args=(path, n, start)) for n in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with open_catalog(path) as c:
        assert c.count_datasets() == 80


def test_one_catalog_object_is_safe_to_share_between_threads(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                cat.add_tag(ds, n * 100 + i, f"t{n}")
                cat.list_datasets()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(cat.list_tags(ds)) == 120


# ----------------------------------------------------------------------------- configurations, sessions, profile


def test_configurations_use_profile_defaults_and_validate_ranges(cat: Catalog) -> None:
    prof = cat.get_profile()
    assert (prof.default_grid_size, prof.default_min_freq, prof.default_max_freq, prof.default_num_points) == (
        5, 0.1, 100000.0, 100)
    cfg = cat.get_config(cat.add_config("defaults", {"Rsh": 5005.0}))
    assert cfg is not None and (cfg.grid_size, cfg.min_freq, cfg.max_freq, cfg.num_points) == (5, 0.1, 1e5, 100)

    cat.update_profile(default_grid_size=8, default_max_freq=1e4)
    cfg2 = cat.get_config(cat.add_config("custom", min_freq=1.0))
    assert cfg2 is not None and (cfg2.grid_size, cfg2.min_freq, cfg2.max_freq) == (8, 1.0, 1e4)
    with pytest.raises(ValidationError) as err:
        cat.add_config("bad", min_freq=100, max_freq=10)
    assert err.value.field == "max_freq"
    with pytest.raises(ValidationError):
        cat.add_config("bad", grid_size=0)
    with pytest.raises(ValidationError):
        cat.update_profile(default_min_freq=-1)
    assert [c.name for c in cat.list_configs()] == ["custom", "defaults"]
    cat.delete_config(cfg2.id)  # type: ignore[arg-type]
    assert [c.name for c in cat.list_configs()] == ["defaults"]


def test_sessions_accumulate_totals_and_sort_by_activity(cat: Catalog) -> None:
    cfg = cat.add_config("ref")
    s1 = cat.create_session("morning", current_circuit_config_id=cfg, settings={"theme": "dark"})
    s2 = cat.create_session("evening")
    touched = cat.touch_session(s1, computations=2, models_generated=3125, tagged=1, settings={"plot": "bode"})
    assert (touched.total_computations, touched.total_models_generated, touched.total_tagged) == (2, 3125, 1)
    assert touched.settings == {"theme": "dark", "plot": "bode"}
    assert [s.id for s in cat.list_sessions()] == [s1, s2]
    cat.touch_session(s2, current_circuit_config_id=None)
    assert [s.id for s in cat.list_sessions()] == [s2, s1]
    with pytest.raises(NotFound):
        cat.touch_session(s1, current_circuit_config_id="missing")


def test_owner_defaults_to_os_user_and_explicit_owner_reowns_local_rows(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with open_catalog(path, owner=None) as c:
        assert c.owner  # the OS user
        ds = c.upsert_dataset(record(1))
    with open_catalog(path, owner="carol") as c:
        assert c.owner == "carol"
        assert c.get_dataset(ds).owner == "carol"  # type: ignore[union-attr]
        assert c.dataset_by_path("/data/npz", "runs/grid_0001.npz") is not None


def test_status_reports_version_and_pending(cat: Catalog) -> None:
    cat.upsert_dataset(record(1))
    st = cat.status()
    assert (st.backend, st.schema_version, st.latest_version, st.pending_outbox) == ("sqlite", 1, 1, 1)
    assert st.up_to_date and st.location == str(cat.path)
    assert cat.conflicts() == []


def test_numpy_values_in_scan_records_are_stored_plainly_and_compare_stably(cat: Catalog) -> None:
    import numpy as np

    meta = {"best": np.float32(0.25), "shape": np.array([3125, 5]), "bad": np.float64("nan"), "raw": b"N=64"}
    ds = cat.upsert_dataset(record(1, metadata=meta, best_resnorm=np.float32(0.25), rows=np.int64(3125)))
    nan_ds = cat.upsert_dataset(record(2, best_resnorm=math.nan))
    assert cat.get_dataset(nan_ds).best_resnorm is None  # type: ignore[union-attr]
    cat.upsert_dataset(record(2, best_resnorm=math.nan))
    got = cat.get_dataset(ds)
    assert got is not None
    assert got.metadata == {"best": 0.25, "shape": [3125, 5], "bad": None, "raw": "N=64"}
    assert got.rows == 3125 and got.best_resnorm == 0.25
    cat.upsert_dataset(record(1, metadata=meta, best_resnorm=np.float32(0.25), rows=np.int64(3125)))
    assert len(outbox_rows(cat)) == 2  # NaN and arrays do not make an unchanged rescan look changed
