"""Fixtures: the same tests run on a real SQLite file and on a real PostgreSQL.

PostgreSQL runs when ``TKR_TEST_POSTGRES_DSN`` is set (for instance
``postgresql://postgres@127.0.0.1:5432/test``) and is skipped, saying why, when
it is not. A set DSN whose server cannot be reached fails the test. Each
PostgreSQL test gets a schema of its own, dropped afterwards, so tests never
see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from tkr_store_peewee import PeeweeStore, StoreSettings

BACKENDS = ["sqlite", "postgres"]

OpenStore = Callable[..., Awaitable[PeeweeStore]]


@asynccontextmanager
async def postgres_settings(dsn: str) -> AsyncIterator[StoreSettings]:
    """Settings for a fresh schema of the test PostgreSQL at ``dsn`` (the kit's ``postgres_dsn``
    fixture, which skips when it is unset and fails when it does not answer), dropped afterwards."""
    schema = f"tkr_test_{uuid.uuid4().hex[:16]}"
    try:
        yield StoreSettings(url=dsn, pg_schema=schema, pool_size=5)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture(params=BACKENDS)
async def store_settings(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[StoreSettings]:
    """Settings of a fresh, empty database on the parametrized backend."""
    if request.param == "sqlite":
        yield StoreSettings(url=f"sqlite:///{tmp_path / 'data' / 'tkr.db'}")
        return
    async with postgres_settings(request.getfixturevalue("postgres_dsn")) as settings:
        yield settings


@pytest.fixture
async def pg_settings(postgres_dsn: str) -> AsyncIterator[StoreSettings]:
    """Settings of a fresh PostgreSQL schema, for tests of PostgreSQL alone."""
    async with postgres_settings(postgres_dsn) as settings:
        yield settings


@pytest.fixture
async def open_store(store_settings: StoreSettings) -> AsyncIterator[OpenStore]:
    """Start another store on the same database (another host node); closed at teardown.

    Keyword arguments change its settings.
    """
    stores: list[PeeweeStore] = []

    async def open_(**changes: Any) -> PeeweeStore:
        store = PeeweeStore(store_settings.model_copy(update=changes))
        stores.append(store)
        await store.start()
        return store

    yield open_
    for store in stores:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> PeeweeStore:
    """A started, migrated store on a fresh database."""
    return await open_store()
