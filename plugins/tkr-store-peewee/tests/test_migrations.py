"""Schema migrations: applied once, in order, atomically, and by ``tkr-host migrate``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Any

import pytest
from tkr_store_peewee import NAME, PeeweeStore, StoreSettings
from tkr_store_peewee.migrations import HISTORY_TABLE, STEPS, Step

from tkr_host.cli import main

OpenStore = Callable[..., Awaitable[PeeweeStore]]
TABLES = {"sessions", "members", "messages", "receipts", "deliveries", "contexts", "tasks", HISTORY_TABLE}
#: The released steps, oldest first (appended, never edited).
RELEASED = ["0001_initial", "0002_tasks_by_session"]


async def tables(store: PeeweeStore) -> set[str]:
    try:
        return set(await store.db.run(store.db.get_tables))
    finally:
        await store.db.aclose()


async def history(store: PeeweeStore) -> list[str]:
    try:
        cursor = await store.db.aexecute_sql(f'SELECT name FROM "{HISTORY_TABLE}" ORDER BY id')
        return [row[0] for row in cursor.fetchall()]
    finally:
        await store.db.aclose()


async def test_migrate_is_idempotent(open_store: OpenStore) -> None:
    store = await open_store(auto_migrate=False)
    assert await store.migrate() == RELEASED
    assert await store.migrate() == []
    assert await tables(store) >= TABLES
    assert await history(store) == RELEASED
    assert store.db.is_closed()


async def test_start_migrates_when_configured(open_store: OpenStore) -> None:
    first = await open_store()
    assert await tables(first) >= TABLES
    second = await open_store()  # another node, or a restart: nothing left to do
    assert await second.migrate() == []
    assert await history(second) == RELEASED


async def test_start_without_auto_migrate_leaves_the_database_alone(open_store: OpenStore) -> None:
    store = await open_store(auto_migrate=False)
    assert not (await tables(store)) & TABLES


async def test_new_steps_are_applied_once_in_order(open_store: OpenStore) -> None:
    store = await open_store()
    calls: list[str] = []

    def add_note(migrator: Any, db: Any) -> None:
        calls.append("9002")
        db.execute_sql('CREATE TABLE "notes" ("id" INTEGER PRIMARY KEY, "body" TEXT)')

    def index_note(migrator: Any, db: Any) -> None:
        calls.append("9003")
        migrator.migrate(migrator.add_index("notes", ("body",), False))

    steps = (*STEPS, Step("9002_notes", add_note), Step("9003_notes_index", index_note))
    assert await store.migrate(steps) == ["9002_notes", "9003_notes_index"]
    assert await store.migrate(steps) == []
    assert calls == ["9002", "9003"]
    assert await history(store) == [*RELEASED, "9002_notes", "9003_notes_index"]
    assert "notes" in await tables(store)


async def test_a_failing_step_leaves_no_trace(open_store: OpenStore) -> None:
    store = await open_store()

    def broken(migrator: Any, db: Any) -> None:
        db.execute_sql('CREATE TABLE "half_done" ("id" INTEGER PRIMARY KEY)')
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        await store.migrate((*STEPS, Step("9002_broken", broken)))
    assert store.db.is_closed()
    # DDL is transactional on SQLite and PostgreSQL: the table went with the step.
    assert "half_done" not in await tables(store)
    assert await history(store) == RELEASED


async def test_nodes_migrating_together_apply_each_step_once(open_store: OpenStore) -> None:
    nodes = [await open_store(auto_migrate=False) for _ in range(3)]
    results = await asyncio.gather(*(node.migrate() for node in nodes))
    assert sorted(name for applied in results for name in applied) == RELEASED
    assert await history(nodes[0]) == RELEASED


def test_step_names_must_be_unique() -> None:
    from tkr_store_peewee.migrations import StepRunner

    with pytest.raises(ValueError, match="repeat"):
        StepRunner(None, (*STEPS, STEPS[0]))


def test_migrate_command(store_settings: StoreSettings, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Only this plugin is loaded, so other plugins' required settings do not matter here.
    others = sorted(ep.name for ep in entry_points(group="tkr_host") if ep.name != NAME)
    table = {"url": store_settings.url}
    if store_settings.pg_schema:
        table["pg_schema"] = store_settings.pg_schema
    config = tmp_path / "config.toml"
    lines = ["[host]", f"disable_plugins = {json.dumps(others)}", f"[plugins.{NAME}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    config.write_text("\n".join(lines) + "\n")

    assert main(["migrate", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"applied: {name}" for name in RELEASED]
    assert main(["migrate", "--config", str(config)]) == 0
    assert "nothing to apply" in capsys.readouterr().out


async def test_tasks_of_a_database_from_before_0002_survive_the_move_to_session_keys(open_store: OpenStore) -> None:
    """A database made by 0001 alone, with a task in it, upgrades in place."""
    store = await open_store(auto_migrate=False)
    assert await store.migrate(STEPS[:1]) == ["0001_initial"]
    try:
        await store.db.aexecute_sql("INSERT INTO sessions (id, title, created_by, created_at, last_seq, metadata)"
                                    " VALUES ('s1', 't', 'alice', '2026-01-01T00:00:00.000Z', 0, '{}')")
        await store.db.aexecute_sql("INSERT INTO tasks (task_id, session_id, document, updated_at)"
                                    " VALUES ('t1', 's1', '{\"task_id\": \"t1\", \"state\": \"working\"}', 'x')")
    finally:
        await store.db.aclose()
    assert await store.migrate() == ["0002_tasks_by_session"]
    assert await store.get_task("s1", "t1") == {"task_id": "t1", "state": "working"}
    # The same id in another session is another task now.
    await store.put_task("s1", "t2", {"task_id": "t2"})
    assert await store.get_task("s1", "t2") == {"task_id": "t2"}
