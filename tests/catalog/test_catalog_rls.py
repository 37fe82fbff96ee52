"""Row-level security on the server, exercised with two real non-superuser roles."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from catalog_helpers import Team, record

from npztui.catalog import PermissionDenied, sync
from npztui.catalog.postgres import migrate_server, server_status

pytestmark = pytest.mark.postgres


def _alice_publishes(make_catalog, team):  # noqa: ANN001, ANN202
    alice = make_catalog("alice", owner=team.alice)
    private = alice.upsert_dataset(record(1))
    public = alice.upsert_dataset(record(2, is_public=True))
    alice.add_tag(private, 1, "secret tag")
    public_tag = alice.add_tag(public, 1, "shared tag", is_public=True)
    alice.add_tag(public, 2, "private tag on a public dataset")
    assert sync(alice, team.alice_url).pushed == 5
    return alice, private, public, public_tag


def test_bob_sees_only_public_rows_of_alice(make_catalog, team) -> None:  # noqa: ANN001
    _, private, public, public_tag = _alice_publishes(make_catalog, team)
    bob = make_catalog("bob", owner=team.bob)
    result = sync(bob, team.bob_url)
    assert result.pulled == 2
    assert [d.id for d in bob.list_datasets()] == [public]
    assert [t.id for t in bob.list_tags()] == [public_tag]
    assert bob.get_dataset(private) is None

    with team.connect("bob") as conn:
        ids = {r[0] for r in conn.execute("SELECT id::text FROM npztui.datasets")}
        labels = {r[0] for r in conn.execute("SELECT label FROM npztui.tags")}
        view = {r[0] for r in conn.execute("SELECT id::text FROM npztui.datasets_with_config")}
        summary = conn.execute("SELECT dataset_id::text, tag_count FROM npztui.tag_summary").fetchall()
    assert ids == {public} and view == {public}  # views do not leak past the policies
    assert labels == {"shared tag"}
    assert summary == [(public, 1)]


def test_bob_cannot_change_or_delete_alice_rows_even_public_ones(make_catalog, team) -> None:  # noqa: ANN001
    _, private, public, public_tag = _alice_publishes(make_catalog, team)
    with team.connect("bob") as conn:
        for ds in (private, public):
            assert conn.execute("UPDATE npztui.datasets SET kind = 'hacked' WHERE id = %s", (ds,)).rowcount == 0
            assert conn.execute("DELETE FROM npztui.datasets WHERE id = %s", (ds,)).rowcount == 0
        assert conn.execute("UPDATE npztui.tags SET label = 'x' WHERE id = %s", (public_tag,)).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO npztui.datasets (id, owner, path, filename) VALUES (%s, %s, 'forged.npz', 'f')",
                (str(uuid.uuid4()), team.alice),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # upsert onto alice's row by id
            conn.execute(
                "INSERT INTO npztui.datasets (id, owner, path, filename) VALUES (%s, %s, 'p.npz', 'p') "
                "ON CONFLICT (id) DO UPDATE SET kind = 'hacked'", (public, team.bob),
            )
        mine = str(uuid.uuid4())
        conn.execute("INSERT INTO npztui.datasets (id, owner, path, filename) VALUES (%s, %s, 'b.npz', 'b')",
                     (mine, team.bob))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # cannot give a row away either
            conn.execute("UPDATE npztui.datasets SET owner = %s WHERE id = %s", (team.alice, mine))
    with team.connect("alice") as conn:
        kinds = {r[0] for r in conn.execute("SELECT kind FROM npztui.datasets")}
        assert "hacked" not in kinds and len(kinds) == 2
        assert conn.execute("SELECT count(*) FROM npztui.datasets WHERE id = %s", (mine,)).fetchone()[0] == 0
        assert conn.execute("UPDATE npztui.datasets SET kind = 'mine' WHERE id = %s", (private,)).rowcount == 1


def test_local_catalog_refuses_edits_of_pulled_foreign_rows(make_catalog, team) -> None:  # noqa: ANN001
    _, _, public, public_tag = _alice_publishes(make_catalog, team)
    bob = make_catalog("bob", owner=team.bob)
    sync(bob, team.bob_url)
    with pytest.raises(PermissionDenied):
        bob.update_tag(public_tag, label="bob was here")
    with pytest.raises(PermissionDenied):
        bob.delete_dataset(public)
    # bob may tag alice's public dataset with his own tag; alice sees it only if he makes it public
    bob.add_tag(public, 1, "bob's view", is_public=True)
    bob.add_tag(public, 5, "bob's private note")
    assert sync(bob, team.bob_url).pushed == 2
    alice2 = make_catalog("alice2", owner=team.alice)
    sync(alice2, team.alice_url)
    assert sorted((t.owner, t.label) for t in alice2.list_tags(public)) == [
        (team.alice, "private tag on a public dataset"), (team.alice, "shared tag"), (team.bob, "bob's view")]


def test_force_rls_applies_to_the_table_owner_too(pg_db, pg_roles, make_catalog) -> None:  # noqa: ANN001
    from psycopg import sql


    with pg_db.admin() as conn:  # the catalog administrator is a plain role that owns the objects
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(pg_db.name), sql.Identifier(pg_roles.admin.name)))
    admin_url = pg_db.url_as(pg_roles.admin)
    assert migrate_server(admin_url) == [1]
    team = Team(pg_db, pg_roles)
    _alice_publishes(make_catalog, team)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'npztui' "
                             "AND tablename = 'datasets'").fetchone()[0]
        visible = conn.execute("SELECT count(*) FROM npztui.datasets").fetchone()[0]
    assert owner == pg_roles.admin.name
    assert visible == 1  # only the public dataset, although admin owns the table
    status = server_status(admin_url)
    assert status.reachable and status.bypasses_rls is False and status.user == pg_roles.admin.name
    assert pg_roles.admin.password not in status.location
