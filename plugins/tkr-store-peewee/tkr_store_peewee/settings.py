"""The ``[plugins.store_peewee]`` table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: URL schemes the store understands. peewee's ``db_url`` knows no async
#: schemes, so :mod:`tkr_store_peewee.database` maps these itself.
SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreSettings(BaseModel):
    """Where the store keeps its data and how it talks to the database."""

    model_config = ConfigDict(extra="forbid")

    #: ``sqlite:///var/tkr.db`` (relative to the working directory),
    #: ``sqlite:////abs/path.db``, ``sqlite:///:memory:``, or
    #: ``postgresql://user:password@host:5432/dbname``.
    url: str = "sqlite:///var/tkr.db"
    #: Apply pending migrations when the host starts. Turn off to run
    #: ``tkr-host migrate`` as a separate deploy step.
    auto_migrate: bool = True
    #: Pooled connections per host process.
    pool_size: int = Field(default=10, ge=1, le=500)
    #: Seconds to wait for a pooled connection (or a new one) before the store
    #: reports ``store.unavailable``.
    acquire_timeout_s: float = Field(default=10.0, gt=0)
    #: Seconds a SQLite writer waits for another writer's lock.
    sqlite_busy_timeout_s: float = Field(default=5.0, ge=0)
    #: SQLite ``PRAGMA synchronous``; ``normal`` is safe with WAL.
    sqlite_synchronous: str = Field(default="normal", pattern="^(off|normal|full|extra)$")
    #: PostgreSQL schema for the tables (created by the migrations when missing);
    #: set as ``search_path`` on every pooled connection. None: the server's default.
    pg_schema: str | None = Field(default=None, pattern="^[a-z_][a-z0-9_]{0,62}$")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url.startswith(SQLITE_PREFIX):
            if len(url) == len(SQLITE_PREFIX):
                raise ValueError("a sqlite URL needs a file name, as in sqlite:///var/tkr.db")
            return url
        if url.startswith(POSTGRES_SCHEMES):
            return url
        raise ValueError("the URL must start with sqlite:///, postgresql:// or postgres://")

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith(SQLITE_PREFIX)
