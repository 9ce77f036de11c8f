"""Storage: migrations on SQLite (WAL) and PostgreSQL, the profile index, blobs by id."""

from __future__ import annotations

import copy
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from autovoice.config import Settings
from autovoice.errors import NotFoundError, ParameterError
from autovoice.storage import BlobStore, Database, ProfileIndex, check_id, database_url
from tests.support import PG, reachable


def test_sqlite_default_wal_and_idempotent_migrations(settings: Settings) -> None:
    assert database_url(settings) == f"sqlite:///{settings.data_dir / 'autovoice.db'}"
    db = Database(settings)
    db.migrate()
    db.migrate()  # a second start changes nothing
    assert {"profiles", "jobs", "api_keys", "alembic_version"} <= set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
    assert db.ping()
    db.dispose()


def test_postgres_url_uses_psycopg3(settings: Settings) -> None:
    s = settings.model_copy(update={"database_url": "postgresql://u@h/db"})
    assert database_url(s) == "postgresql+psycopg://u@h/db"


def _upgrade_from_0001(db: Database) -> None:
    """0001 with a running job in it, then 0002 (heartbeat, requeued) and 0003 (deliveries: its attempts,
    as far as anyone knows); down to 0001 and up again."""
    from alembic import command
    from alembic.config import Config

    from autovoice.storage.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO jobs (id, kind, params, status, progress, stage, created_at, updated_at, "
                "attempts, cancel_requested) VALUES ('job_0000000000000001', 'conversion', '{}', 'running', "
                "0.5, 'convert', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', 1, false)"
            )
        )
        conn.commit()
        command.upgrade(cfg, "head")
        conn.commit()
        columns = {c["name"] for c in inspect(conn).get_columns("jobs")}
        assert {"heartbeat_at", "requeued", "deliveries"} <= columns
        assert conn.execute(text("SELECT heartbeat_at, requeued, status, deliveries FROM jobs")).one() == (
            None,
            None,
            "running",
            1,
        )
        command.downgrade(cfg, "0001")
        conn.commit()
        assert not {"heartbeat_at", "deliveries"} & {c["name"] for c in inspect(conn).get_columns("jobs")}
        assert conn.execute(text("SELECT status FROM jobs")).scalar() == "running"
        command.upgrade(cfg, "head")
        conn.commit()
    db.migrate()  # already at head: nothing to do


def test_sqlite_migration_0002_keeps_jobs(settings: Settings) -> None:
    db = Database(settings)
    _upgrade_from_0001(db)
    db.dispose()


@pytest.mark.skipif(not reachable(5432), reason="needs PostgreSQL on 127.0.0.1:5432")
def test_postgres_migration_0002_keeps_jobs(settings: Settings) -> None:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        db = Database(settings.model_copy(update={"database_url": f"{PG}?options=-csearch_path%3D{schema}"}))
        assert db.dialect == "postgresql"
        _upgrade_from_0001(db)
        db.dispose()
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.skipif(not reachable(5432), reason="needs PostgreSQL on 127.0.0.1:5432")
def test_postgres_concurrent_migrations(settings: Settings) -> None:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        s = settings.model_copy(update={"database_url": f"{PG}?options=-csearch_path%3D{schema}"})
        dbs = [Database(s) for _ in range(3)]
        errors: list[BaseException] = []

        def migrate(db: Database) -> None:
            try:
                db.migrate()
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=migrate, args=(db,)) for db in dbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert dbs[0].dialect == "postgresql"
        assert {"profiles", "jobs", "api_keys"} <= set(inspect(dbs[0].engine).get_table_names())
        for db in dbs:
            db.dispose()
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_profile_index_follows_the_store(settings: Settings, voice_profile: Any) -> None:
    db = Database(settings)
    db.migrate()
    index = ProfileIndex(db, settings)
    assert index.list() == []
    # A profile written by the CLI (store only) appears after reconcile, and on direct lookup.
    p = copy.deepcopy(voice_profile)
    index.store.save(p)
    assert index.summary(p.id)["name"] == p.name
    index.reconcile()
    assert [s["id"] for s in index.list()] == [p.id]
    assert index.name_taken(p.name)
    # Names and path tricks never reach the store through the id lookups.
    for bad in (p.name, "../profiles", "prof_../../x"):
        with pytest.raises(NotFoundError):
            index.summary(bad)
        with pytest.raises(NotFoundError):
            index.delete(bad)
    index.delete(p.id)
    assert index.list() == []
    assert not index.store.exists(p.id)
    # Data removed behind the index's back: reconcile drops the row.
    q = copy.deepcopy(voice_profile)
    index.save(q)
    index.store.delete(q.id)
    index.reconcile()
    assert index.list() == []
    db.dispose()


@pytest.mark.parametrize("bad", ["../etc", "job_", "job_XYZ", "job_0123/../../x", "", "JOB_0123456789"])
def test_ids_are_checked(bad: str) -> None:
    with pytest.raises(ParameterError):
        check_id(bad)


def test_blob_store_deletes_job_folder(settings: Settings) -> None:
    blobs = BlobStore(settings)
    folder = blobs.job_dir("job_0123456789abcdef")
    folder.mkdir(parents=True)
    (folder / "mix.wav").write_bytes(b"x")
    blobs.delete_job("job_0123456789abcdef")
    assert not folder.exists()
    blobs.delete_job("job_0123456789abcdef")  # idempotent
    scratch = blobs.scratch_dir()
    assert scratch.is_dir()
    assert Path(settings.data_dir) in scratch.parents


def test_old_scratch_folders_are_cleaned(settings: Settings) -> None:
    import os

    blobs = BlobStore(settings)
    old, new = blobs.scratch_dir(), blobs.scratch_dir()
    os.utime(old, (0, 0))
    assert blobs.clean_scratch(older_than_s=60) == 1
    assert not old.exists()
    assert new.exists()


def test_sqlite_timestamps_come_back_in_utc(settings: Settings) -> None:
    """SQLite keeps no zone: a job's times read back are still UTC-aware, so the API prints an offset
    (an OpenAPI ``date-time``) as it does on PostgreSQL; a time given in another zone is stored as UTC."""
    from datetime import UTC, datetime, timedelta, timezone

    from autovoice.storage import JobRow

    db = Database(settings)
    db.migrate()
    written = datetime(2026, 12, 7, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    with db.session() as s:
        s.add(JobRow(id="job_00000001", kind="conversion", params={}, started_at=written))
    with db.session() as s:
        row = s.get(JobRow, "job_00000001")
        assert row is not None
        assert row.created_at.tzinfo is not None
        assert row.created_at.utcoffset() == timedelta(0)
        assert row.started_at == written
        assert row.started_at.tzinfo == UTC
        assert row.started_at.isoformat() == "2026-12-07T07:00:00.123456+00:00"
        assert row.finished_at is None
    with db.engine.connect() as conn:  # stored as UTC wall time
        stored = conn.execute(text("SELECT started_at FROM jobs")).scalar()
    assert str(stored).startswith("2026-12-07 07:00:00")
    db.dispose()


def _age(path: Path, seconds: float) -> None:
    import os
    import time

    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_sweep_removes_crash_debris_and_nothing_live(settings: Settings) -> None:
    """Debris of crashes (a folder no row owns, a ``.part`` file, a delete cut off half-way) goes once
    untouched for the given age; what a row owns stays, and so does anything changed more recently
    (another server may be writing it)."""
    blobs = BlobStore(settings)
    jobs = Path(settings.data_dir) / "jobs"
    owned_old, owned_new = "job_00000000000000a1", "job_00000000000000a2"
    files = {
        "cut upload": jobs / "job_00000000000000b1" / "file-0.wav",  # no row, old
        "live upload": jobs / "job_00000000000000b2" / "file-0.wav",  # no row, being written
        "half delete": jobs / ".del-job_00000000000000b3-1234abcd" / "mix.wav",
        "output": jobs / owned_old / "mix.wav",
        "old part": jobs / owned_old / ".mix.wav.part",
        "new part": jobs / owned_new / ".report.json.part",
        "input": jobs / owned_new / "input.wav",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for name in ("cut upload", "half delete", "output", "old part", "input"):
        _age(files[name], 7200)
        _age(files[name].parent, 7200)
    asked: list[list[str]] = []

    def owned(ids: Any) -> set[str]:
        asked.append(sorted(ids))
        return {i for i in ids if i in (owned_old, owned_new)}

    swept = blobs.sweep(owned, older_than_s=3600)
    assert (swept.folders, swept.parts) == (2, 1)
    assert asked == [sorted([owned_old, owned_new, "job_00000000000000b1", "job_00000000000000b2"])]
    left = {name for name, path in files.items() if path.exists()}
    assert left == {"live upload", "output", "new part", "input"}
    # Nothing else can be writing (an embedded server starting): no age needed, rows still protect.
    swept = blobs.sweep(owned, older_than_s=0)
    assert (swept.folders, swept.parts) == (1, 1)
    assert {name for name, path in files.items() if path.exists()} == {"output", "input"}
    empty = BlobStore(settings.model_copy(update={"data_dir": Path(settings.data_dir) / "none"}))
    assert empty.sweep(owned, older_than_s=0).folders == 0  # no jobs/ yet
