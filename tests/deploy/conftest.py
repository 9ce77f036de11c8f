"""Deployment tests reuse the service tests' fixtures (the session profile and clips, ``configure``) and
share ``distributed``: a fresh PostgreSQL schema and Redis database for distributed-mode stacks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from autovoice.config import Settings
from tests.service.conftest import configure, long_clip, profile_id, short_clip, voice_profile
from tests.support import PG, postgres_and_redis

__all__ = ["configure", "distributed", "long_clip", "profile_id", "short_clip", "voice_profile"]

REDIS = "redis://127.0.0.1:6379/9"  # a database of its own (others: 10, 11, 13, 14; bench/load.py: 12)


@pytest.fixture
def distributed(configure: Callable[..., Settings], settings: Settings) -> Iterator[dict[str, str]]:
    """Environment for a server and workers on a fresh PostgreSQL schema and Redis database (also applied
    to this process's settings); no process is started."""
    if not postgres_and_redis():
        pytest.skip("needs PostgreSQL and Redis on 127.0.0.1")
    import psycopg
    import redis

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    redis.Redis.from_url(REDIS).flushdb()
    env = {
        "AUTOVOICE_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
        "AUTOVOICE_BROKER_URL": REDIS,
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_RATE_LIMIT": "",
        "AUTOVOICE_JOB_RATE_LIMIT": "",
    }
    configure(**{k.removeprefix("AUTOVOICE_").lower(): v for k, v in env.items()})
    try:
        yield env
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        redis.Redis.from_url(REDIS).flushdb()
