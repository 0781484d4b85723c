"""Bundles on both backends: export, verified import, round trips between SQLite and
PostgreSQL, idempotent re-import, conflicts, one project's bundle, and damaged bundles
refused with nothing written."""

from __future__ import annotations

import gzip
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from bundle_data import assert_search_index_works, populate
from ctxdb.errors import (
    BundleError,
    BundleVersionError,
    ImportConflictError,
    ProjectNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from ctxdb.storage.tables import TABLES


def open_db(url: str, tmp_path: Path) -> Ctxdb:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return Ctxdb.open(load_settings(env=env, url=url, actor="user:test", auto_migrate=True))


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own (the test's second database)."""
    import psycopg

    name = f"ctxdb_bundles_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(pg_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.splitlines()


def records(path: Path) -> list[bytes]:
    """The record lines: everything but the header and the trailer."""
    return lines(path)[1:-1]


def trailer(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(lines(path)[-1])
    return result


def shop(db: Ctxdb) -> str:
    """The id of the populated data's main project."""
    return str(next(p["project_id"] for p in db.projects.list() if p["name"] == "Shop"))


def row_counts(db: Ctxdb, tmp_path: Path) -> dict[str, int]:
    path = tmp_path / f"counts-{secrets.token_hex(4)}.jsonl"
    return {name: t["rows"] for name, t in db.bundles.export(path)["tables"].items()}


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_sqlite_to_postgres_to_sqlite_gives_back_the_same_records(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    with open_db(str(tmp_path / "first.db"), tmp_path) as first:
        populate(first, tmp_path)
        exported = first.bundles.export(tmp_path / "first.jsonl")
    assert all(exported["tables"][t.name]["rows"] > 0 for t in TABLES), exported["tables"]
    with open_db(fresh_pg_url, tmp_path) as pg:
        imported = pg.bundles.import_bundle(tmp_path / "first.jsonl")
        assert imported["inserted"] == exported["records"] and imported["skipped"] == 0
        pg.bundles.export(tmp_path / "pg.jsonl.gz")
    assert records(tmp_path / "pg.jsonl.gz") == records(tmp_path / "first.jsonl")
    assert trailer(tmp_path / "pg.jsonl.gz")["tables"] == exported["tables"]
    header = json.loads(lines(tmp_path / "pg.jsonl.gz")[0])
    assert header["source_backend"] == "postgres"
    with open_db(str(tmp_path / "last.db"), tmp_path) as last:
        last.bundles.import_bundle(tmp_path / "pg.jsonl.gz")
        last.bundles.export(tmp_path / "last.jsonl")
    assert records(tmp_path / "last.jsonl") == records(tmp_path / "first.jsonl")
    with open_db(fresh_pg_url, tmp_path) as pg:
        assert_search_index_works(pg, shop(pg))


def test_imported_data_reads_the_same_and_counters_continue(
    db: Ctxdb, tmp_path: Path
) -> None:
    with open_db(str(tmp_path / "source.db"), tmp_path) as source:
        ids = populate(source, tmp_path, archive=False)
        pid = ids["project_id"]
        source.bundles.export(tmp_path / "b.jsonl")
        before = (source.context.full(pid), source.memories.history(pid, "user:prefs", "theme"),
                  source.tasks.list(pid), source.audit_log(limit=1000))
    db.bundles.import_bundle(tmp_path / "b.jsonl")
    assert (db.context.full(pid), db.memories.history(pid, "user:prefs", "theme"),
            db.tasks.list(pid), db.audit_log(limit=1000)) == before
    assert_search_index_works(db, pid)
    newest = max(item["item_id"] for items in before[0].values() for item in items)
    added = db.context.store(pid, {"after": "import"}, "HIGH")
    assert added["item_id"] > newest  # the identity counter moved past the imported ids
    assert added["sequence_number"] > max(
        item["sequence_number"] for items in before[0].values() for item in items)
    task = db.tasks.create(pid, "after import")
    assert task["task_id"] > max(t["task_id"] for t in before[2])
    assert db.audit_log(limit=1)[0]["audit_id"] > before[3][0]["audit_id"]


def test_importing_the_same_bundle_again_changes_nothing(db: Ctxdb, tmp_path: Path) -> None:
    populate(db, tmp_path, archive=False)
    exported = db.bundles.export(tmp_path / "b.jsonl")
    again = db.bundles.import_bundle(tmp_path / "b.jsonl")
    assert (again["inserted"], again["skipped"]) == (0, exported["records"])
    db.bundles.export(tmp_path / "after.jsonl")
    assert records(tmp_path / "after.jsonl") == records(tmp_path / "b.jsonl")


def test_a_dry_run_counts_and_writes_nothing(db: Ctxdb, tmp_path: Path) -> None:
    with open_db(str(tmp_path / "source.db"), tmp_path) as source:
        populate(source, tmp_path, archive=False)
        exported = source.bundles.export(tmp_path / "b.jsonl")
    plan = db.bundles.import_bundle(tmp_path / "b.jsonl", dry_run=True)
    assert plan["dry_run"] and plan["inserted"] == exported["records"]
    assert plan["tables"]["projects"]["inserted"] == 3
    assert set(row_counts(db, tmp_path).values()) == {0}


# --- conflicts -------------------------------------------------------------------------------


def test_a_changed_row_is_a_conflict_unless_replaced(db: Ctxdb, tmp_path: Path) -> None:
    ids = populate(db, tmp_path, archive=False)
    db.bundles.export(tmp_path / "b.jsonl")
    db.projects.update(ids["project_id"], description="changed after the export")
    db.bundles.export(tmp_path / "changed.jsonl")
    with pytest.raises(ImportConflictError, match="projects") as refused:
        db.bundles.import_bundle(tmp_path / "b.jsonl")
    assert refused.value.details["table"] == "projects"
    db.bundles.export(tmp_path / "untouched.jsonl")
    assert records(tmp_path / "untouched.jsonl") == records(tmp_path / "changed.jsonl")
    with pytest.raises(ImportConflictError) as planned:
        db.bundles.import_bundle(tmp_path / "b.jsonl", dry_run=True)
    assert planned.value.details["conflicts"] == 1
    assert planned.value.details["examples"] == [
        {"table": "projects", "key": {"project_id": ids["project_id"]}}]
    replaced = db.bundles.import_bundle(tmp_path / "b.jsonl", replace=True)
    assert replaced["replaced"] == 1
    assert db.projects.get(ids["project_id"])["description"].startswith("e-commerce")


def test_a_conflict_late_in_the_import_leaves_nothing_behind(
    db: Ctxdb, tmp_path: Path
) -> None:
    with open_db(str(tmp_path / "source.db"), tmp_path) as source:
        populate(source, tmp_path, archive=False)
        source.bundles.export(tmp_path / "b.jsonl")
        db.bundles.import_bundle(tmp_path / "b.jsonl")
        source.projects.create("Later", "written after the first export")
        source.bundles.export(tmp_path / "later.jsonl")
    # A checkpoint (one of the last tables) changed here: the later bundle's version differs.
    db.storage.write(lambda tx: tx.execute_raw(
        "UPDATE checkpoints SET label = 'changed here'", {}))
    before = row_counts(db, tmp_path)
    with pytest.raises(ImportConflictError, match="checkpoints"):
        db.bundles.import_bundle(tmp_path / "later.jsonl")
    assert row_counts(db, tmp_path) == before  # the new project and its audit row are not in


# --- one project -----------------------------------------------------------------------------


def test_a_project_bundle_holds_that_project_and_imports_alone(
    db: Ctxdb, tmp_path: Path
) -> None:
    with open_db(str(tmp_path / "source.db"), tmp_path) as source:
        ids = populate(source, tmp_path)
        pid = ids["project_id"]
        exported = source.bundles.export(tmp_path / "shop.jsonl", pid)
    assert exported["project_id"] == pid
    for line in records(tmp_path / "shop.jsonl"):
        row = json.loads(line)["row"]
        assert row.get("project_id", pid) == pid
    counts = {name: t["rows"] for name, t in exported["tables"].items()}
    assert counts["projects"] == 1 and counts["memory_versions"] == 6
    assert counts["session_events"] == 2 and counts["message_deliveries"] == 4
    imported = db.bundles.import_bundle(tmp_path / "shop.jsonl")
    assert imported["project_id"] == pid and imported["inserted"] == exported["records"]
    db.bundles.export(tmp_path / "whole.jsonl")
    assert records(tmp_path / "whole.jsonl") == records(tmp_path / "shop.jsonl")


def test_export_refusals(db: Ctxdb, tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError):
        db.bundles.export(tmp_path / "x.jsonl", "proj_unknown")
    (tmp_path / "taken.jsonl").write_text("mine")
    with pytest.raises(ValidationError, match="already exists"):
        db.bundles.export(tmp_path / "taken.jsonl")
    assert (tmp_path / "taken.jsonl").read_text() == "mine"
    db.bundles.export(tmp_path / "taken.jsonl", overwrite=True)
    assert trailer(tmp_path / "taken.jsonl")["records"] == 0
    with pytest.raises(ValidationError, match="does not exist"):
        db.bundles.export(tmp_path / "no" / "such" / "dir.jsonl")
    assert not list(tmp_path.glob(".*.partial"))


def test_export_to_a_full_disk_is_a_typed_error_leaving_nothing(
    db: Ctxdb, project: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from ctxdb.errors import OutputWriteError
    from ctxdb.service.operations import bundles

    def full(_descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(bundles.os, "fsync", full)  # the disk fills as the bundle is flushed
    with pytest.raises(OutputWriteError) as refused:
        db.bundles.export(tmp_path / "all.jsonl")
    assert refused.value.message == (f"cannot write the bundle {tmp_path / 'all.jsonl'}: "
                                     "No space left on device; nothing was written there")
    assert refused.value.category == "storage"
    assert not (tmp_path / "all.jsonl").exists() and not list(tmp_path.glob(".all.jsonl.*"))


def test_export_to_a_stream(db: Ctxdb, project: dict[str, Any], tmp_path: Path) -> None:
    stream = io.BytesIO()
    result = db.bundles.export(stream)
    assert result["path"] == "-" and result["records"] == 2  # the project and its audit row
    (tmp_path / "streamed.jsonl").write_bytes(stream.getvalue())
    assert db.bundles.verify(tmp_path / "streamed.jsonl").records == 2


# --- damaged bundles -------------------------------------------------------------------------


def _flip(data: bytes, where: float) -> bytes:
    index = int(len(data) * where)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def _without_line(data: bytes, number: int) -> bytes:
    parts = data.split(b"\n")
    return b"\n".join(parts[:number] + parts[number + 1:])


def _repeat_line(data: bytes, number: int) -> bytes:
    parts = data.split(b"\n")
    return b"\n".join(parts[:number + 1] + parts[number:])


def _with_header(data: bytes, **changes: Any) -> bytes:
    first, rest = data.split(b"\n", 1)
    header = {**json.loads(first), **changes}
    return json.dumps(header).encode() + b"\n" + rest


DAMAGE = {
    "flipped byte in the header": lambda d: _flip(d, 0.01),
    "flipped byte in a record": lambda d: _flip(d, 0.5),
    "flipped byte in the trailer": lambda d: _flip(d, 0.995),
    "missing record": lambda d: _without_line(d, 5),
    "repeated record": lambda d: _repeat_line(d, 5),
    "truncated in a record": lambda d: d[: len(d) // 2],
    "truncated before the trailer": lambda d: _without_line(d, len(d.split(b"\n")) - 2),
    "line after the trailer": lambda d: d + d.split(b"\n")[3] + b"\n",
    "empty file": lambda d: b"",
    "not a bundle": lambda d: b"name,value\nx,1\n",
    "corrupt gzip": lambda d: _flip(gzip.compress(d), 0.6),
    "truncated gzip": lambda d: gzip.compress(d)[:-20],
}
VERSIONS = {
    "newer format version": {"format_version": 2},
    "newer schema version": {"schema_version": 10_000},
    "unknown table": {"tables": {"projects": ["project_id"], "from_the_future": ["id"]}},
}


@pytest.fixture
def good_bundle(tmp_path: Path) -> bytes:
    with open_db(str(tmp_path / "source.db"), tmp_path) as source:
        populate(source, tmp_path, archive=False)
        source.bundles.export(tmp_path / "good.jsonl")
    return (tmp_path / "good.jsonl").read_bytes()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_bundle_is_refused_with_nothing_written(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes, damage: str
) -> None:
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(DAMAGE[damage](good_bundle))
    assert path.read_bytes() != good_bundle
    with pytest.raises(BundleError) as refused:
        db.bundles.import_bundle(path)
    assert refused.value.code in ("invalid_bundle", "unsupported_bundle_version")
    with pytest.raises(BundleError):
        db.bundles.import_bundle(path, dry_run=True)
    assert set(row_counts(db, tmp_path).values()) == {0}


def _with_line(data: bytes, number: int, line: bytes) -> bytes:
    parts = data.split(b"\n")
    return b"\n".join([*parts[:number], line, *parts[number:]])


@pytest.mark.parametrize(("line", "limit"), [
    (b"[" * 5_000 + b"]" * 5_000, "nested deeper than the limit of 100 levels"),
    (b'{"a": ' * 150 + b"1" + b"}" * 150, "nested deeper than the limit of 100 levels"),
    (b"1" * 5_000, "an integer of 5000 digits, over the limit of 4300 digits"),
])
def test_a_bundle_line_over_a_json_limit_is_damage_naming_the_limit(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes, line: bytes, limit: str
) -> None:
    for number in (0, 3):  # as the header, as a record
        path = tmp_path / f"over-{number}.jsonl"
        path.write_bytes(_with_line(good_bundle, number, line) if number else
                         line + b"\n" + good_bundle.split(b"\n", 1)[1])
        with pytest.raises(BundleError) as refused:
            db.bundles.import_bundle(path)
        if number:
            assert limit in refused.value.message and "(line 4)" in refused.value.message
        else:
            assert "not a ctxdb bundle" in refused.value.message
    assert set(row_counts(db, tmp_path).values()) == {0}


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_a_bundle_of_a_newer_version_is_refused(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes, version: str
) -> None:
    path = tmp_path / "newer.jsonl"
    path.write_bytes(_with_header(good_bundle, **VERSIONS[version]))
    with pytest.raises(BundleVersionError):
        db.bundles.import_bundle(path)
    assert set(row_counts(db, tmp_path).values()) == {0}


def test_a_bundle_changed_after_verification_is_not_imported(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes
) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(good_bundle)

    class Tamperer:
        """Changes the file between the verification and the import."""

        def start(self, phase: str, total: int | None) -> None:
            if phase == "import":
                path.write_bytes(good_bundle.replace(b"Stripe", b"Stripf"))

        def advance(self, amount: int) -> None:
            pass

    with pytest.raises(BundleError, match="changed"):
        db.bundles.import_bundle(path, progress=Tamperer())
    assert set(row_counts(db, tmp_path).values()) == {0}
    # The failed load had switched the search index's triggers off: the rollback put them back.
    pid = db.projects.create("after")["project_id"]
    item = db.context.store(pid, {"note": "zebracorn"}, "HIGH")
    assert [hit["id"] for hit in db.search.search(pid, "zebracorn")] == [item["item_id"]]


# --- records checked by their bytes, rows by their values ------------------------------------


def _resigned(data: bytes, change: Any) -> bytes:
    """The bundle with ``change(record)`` applied to every record, every checksum made right
    again (the records', the trailer's per table and the file's): what a buggy or hostile
    writer could produce, which no checksum can catch."""
    from ctxdb.service.operations.bundle_writer import BundleWriter
    from ctxdb.service.operations.records import RowCodec, TableDigest
    from ctxdb.storage.tables import table_named

    parts = data.split(b"\n")
    out = io.BytesIO()
    writer = BundleWriter(out)
    header = json.loads(parts[0])
    writer.header({k: v for k, v in header.items() if k != "kind"})
    digests = {name: TableDigest() for name in header["tables"]}
    for raw in parts[1:-2]:
        record = json.loads(raw)
        table = table_named(record["table"])
        assert table is not None
        row = change(record["table"], record["row"])
        codec = RowCodec(table, list(row))
        line, checksum = codec.record(row)
        text = change.layout(line) if hasattr(change, "layout") else line
        writer.record(text)
        digests[record["table"]].add(checksum)
    writer.trailer(digests)
    return out.getvalue()


def test_a_row_value_of_the_wrong_kind_is_refused_with_nothing_written(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes
) -> None:
    def count_as_text(table: str, row: dict[str, Any]) -> dict[str, Any]:
        if table == "context_items":
            return {**row, "token_count": str(row["token_count"])}
        return row

    path = tmp_path / "wrong-kind.jsonl"
    path.write_bytes(_resigned(good_bundle, count_as_text))
    with pytest.raises(BundleError, match=r"context_items\.token_count is not a valid int"):
        db.bundles.verify(path)
    with pytest.raises(BundleError, match=r"context_items\.token_count is not a valid int"):
        db.bundles.import_bundle(path)
    assert set(row_counts(db, tmp_path).values()) == {0}
    # The rolled-back load had switched the search index's triggers off: they are back.
    pid = db.projects.create("after")["project_id"]
    item = db.context.store(pid, {"note": "zebracorn"}, "HIGH")
    assert [hit["id"] for hit in db.search.search(pid, "zebracorn")] == [item["item_id"]]


def test_records_in_another_layout_are_checked_by_their_content(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes
) -> None:
    def unchanged(table: str, row: dict[str, Any]) -> dict[str, Any]:
        return row

    def spaced(line: str) -> str:  # the same record, keys in another order, with spaces
        record = json.loads(line)
        return json.dumps({"table": record["table"], "sha256": record["sha256"],
                           "row": record["row"]}, indent=None, ensure_ascii=True)

    unchanged.layout = spaced  # type: ignore[attr-defined]
    path = tmp_path / "spaced.jsonl"
    path.write_bytes(_resigned(good_bundle, unchanged))
    assert b'{"table": ' in path.read_bytes()
    expected = json.loads(good_bundle.split(b"\n")[-2])["tables"]
    assert db.bundles.verify(path).trailer["tables"] == expected
    assert db.bundles.import_bundle(path)["inserted"] == sum(t["rows"] for t in expected.values())
    # A changed value in such a line is still caught by its checksum.
    text = path.read_bytes()
    damaged = tmp_path / "spaced-damaged.jsonl"
    damaged.write_bytes(text.replace(b"Stripe", b"Stripf", 1))
    assert damaged.read_bytes() != text
    with pytest.raises(BundleError, match="checksum does not match"):
        db.bundles.import_bundle(damaged)


def test_a_signed_line_that_is_no_json_is_refused_with_nothing_written(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes
) -> None:
    """A line in ctxdb's layout whose checksum matches its bytes passes the first reading
    unparsed; the second finds it is no JSON and the import is rolled back."""
    import hashlib

    from ctxdb.service.operations.bundle_writer import BundleWriter
    from ctxdb.service.operations.records import TableDigest

    parts = good_bundle.split(b"\n")
    header = json.loads(parts[0])
    out = io.BytesIO()
    writer = BundleWriter(out)
    writer.header({k: v for k, v in header.items() if k != "kind"})
    digests = {name: TableDigest() for name in header["tables"]}
    for number, raw in enumerate(parts[1:-2]):
        record = json.loads(raw)
        line = raw.decode()
        if number == len(parts) // 2:  # the row's closing brace goes missing, then re-signed
            body = line[:line.rindex(',"sha256":"')].removesuffix("}")
            checksum = hashlib.sha256(
                f'{body},"table":"{record["table"]}"}}'.encode()).hexdigest()
            line = f'{body},"sha256":"{checksum}","table":"{record["table"]}"}}'
            broken = record["table"]
        else:
            checksum = record["sha256"]
        writer.record(line)
        digests[record["table"]].add(checksum)
    writer.trailer(digests)
    path = tmp_path / "signed-garbage.jsonl"
    path.write_bytes(out.getvalue())
    with pytest.raises(BundleError, match="not a JSON line"):
        db.bundles.verify(path)
    signed_garbage = r"line \d+\): not a JSON line \(or the file changed"
    with pytest.raises(BundleError, match=signed_garbage) as refused:
        db.bundles.import_bundle(path)
    assert broken in {t.name for t in TABLES} and refused.value.code == "invalid_bundle"
    assert set(row_counts(db, tmp_path).values()) == {0}


# --- values one backend would store and the other refuse --------------------------------------


def _forged(data: bytes, change: Any) -> bytes:
    """Like ``_resigned``, but every record written in ctxdb's layout with ASCII escapes, so
    that a value holding a lone surrogate can be written and signed, as a hostile writer
    could: the first reading takes such a line by its bytes, the second reads its values."""
    import hashlib

    from ctxdb.service.operations.bundle_writer import BundleWriter
    from ctxdb.service.operations.records import TableDigest

    parts = data.split(b"\n")
    header = json.loads(parts[0])
    out = io.BytesIO()
    writer = BundleWriter(out)
    writer.header({k: v for k, v in header.items() if k != "kind"})
    digests = {name: TableDigest() for name in header["tables"]}
    for raw in parts[1:-2]:
        record = json.loads(raw)
        table = record["table"]
        body = json.dumps(change(table, record["row"]), sort_keys=True, separators=(",", ":"))
        checksum = hashlib.sha256(f'{{"row":{body},"table":"{table}"}}'.encode()).hexdigest()
        writer.record(f'{{"row":{body},"sha256":"{checksum}","table":"{table}"}}')
        digests[table].add(checksum)
    writer.trailer(digests)
    return out.getvalue()


def _in_first(table: str, column: str, value: Any) -> Any:
    """A change giving ``column`` of the first row of ``table`` the value ``value``."""
    done: list[bool] = []

    def change(name: str, row: dict[str, Any]) -> dict[str, Any]:
        if name != table or done:
            return row
        done.append(True)
        return {**row, column: value}

    return change


# case -> (table, column, the value given to its first row, the error)
UNSTORABLE: dict[str, tuple[str, str, Any, str]] = {
    "NUL in a project name": ("projects", "name", "Sh\x00op",
                              r"projects\.name holds a NUL character"),
    "lone surrogate in a project name": ("projects", "name", "Sh\ud800op",
                                         r"projects\.name holds a lone surrogate character"),
    "NUL in JSON content": ("context_items", "content", {"note": "a\x00b"},
                            r"context_items\.content holds a NUL character"),
    "lone surrogate in a JSON key": ("context_items", "metadata", {"\udc00": 1},
                                     r"context_items\.metadata holds a lone surrogate"),
    "impossible date": ("projects", "created_at", "2025-13-45T99:99:99.000Z",
                        r"projects\.created_at is not a valid timestamp"),
    "February 30th": ("context_items", "created_at", "2026-02-30T10:00:00.000Z",
                      r"context_items\.created_at is not a valid timestamp"),
    "an id longer than PostgreSQL indexes": ("projects", "repo_key", "git:" + "r" * 3_000,
                                             r"projects\.repo_key is longer than 2000 bytes"),
    "an integer over BIGINT": ("projects", "total_story_points", 2**63,
                               r"projects\.total_story_points .*9223372036854775807"),
    "a negative integer under BIGINT": ("context_items", "token_count", -(2**63) - 1,
                                        r"context_items\.token_count .*9223372036854775807"),
    "an id over BIGINT": ("context_items", "item_id", 2**64,
                          r"context_items\.item_id .*9223372036854775807"),
}


@pytest.mark.parametrize("case", sorted(UNSTORABLE))
def test_a_value_one_backend_cannot_store_is_refused_by_both(
    db: Ctxdb, tmp_path: Path, good_bundle: bytes, case: str
) -> None:
    table, column, value, message = UNSTORABLE[case]
    path = tmp_path / "forged.jsonl"
    path.write_bytes(_forged(good_bundle, _in_first(table, column, value)))
    with pytest.raises(BundleError, match=message):
        db.bundles.verify(path)
    with pytest.raises(BundleError, match=message):
        db.bundles.import_bundle(path)
    assert set(row_counts(db, tmp_path).values()) == {0}
    # The same records without the forged value are a good bundle.
    intact = tmp_path / "intact.jsonl"
    intact.write_bytes(_forged(good_bundle, lambda table, row: row))
    assert db.bundles.import_bundle(intact)["inserted"] > 0


@pytest.mark.postgres
def test_a_poisoned_transcript_ingested_on_sqlite_moves_to_postgres_and_back(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    """NULs, lone surrogates and impossible dates were stored by SQLite and then refused by
    PostgreSQL (``db copy``) and by the import (even into SQLite)."""
    from ctxdb.service.operations.dbcopy import copy_database
    from test_ingest import POISON, response

    transcript = tmp_path / "poisoned.jsonl"
    transcript.write_bytes(response(1) + b"".join(line for line, _, _ in POISON.values())
                           + response(2))
    lite = str(tmp_path / "lite.db")
    with open_db(lite, tmp_path) as db:
        assert db.transcripts.ingest(transcript)["usage_entries"] > 2
        db.bundles.export(tmp_path / "lite.jsonl")
    with open_db(str(tmp_path / "fresh.db"), tmp_path) as fresh:
        fresh.bundles.import_bundle(tmp_path / "lite.jsonl")
    with open_db(fresh_pg_url, tmp_path) as pg:
        pg.bundles.import_bundle(tmp_path / "lite.jsonl")
        pg.bundles.export(tmp_path / "pg.jsonl")
    assert records(tmp_path / "pg.jsonl") == records(tmp_path / "lite.jsonl")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    settings = {name: load_settings(env=env, url=url, actor="user:test", auto_migrate=True)
                for name, url in (("lite", lite), ("pg", fresh_pg_url))}
    report = copy_database(settings["lite"], settings["pg"], force=True)
    assert all(row["match"] for row in report["tables"])
