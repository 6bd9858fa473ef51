"""Hot-path statements run on the session connection's DB-API cursor (MariaDB), else by SQLAlchemy.

Each statement of the chat send cost ~50-90 us of CPU in SQLAlchemy's execution
layer (compiled-cache lookup, execution context, events, result wrapping) on top
of PyMySQL's own ~25 us. A :class:`RawStatement` is a Core or text statement
compiled once per dialect; on MariaDB it is executed with a bare PyMySQL cursor
of the session's current connection, on any other database (SQLite, the
embedded default) through ``Connection.execute`` as before.

Invariants, so that a raw statement behaves like a SQLAlchemy one:

* same connection and transaction as the session (``db.session.connection()``):
  the session's ``commit()``/``rollback()`` end what it did;
* ``BEGIN`` before the first write or locking read, and the once-only reconnect
  of a dead pooled connection, exactly as :mod:`wsgi_app.database` does for
  SQLAlchemy statements (the same functions);
* a DB-API error is raised as SQLAlchemy's wrapper (``OperationalError``,
  ``IntegrityError``...), so :mod:`wsgi_app.transactions` retries deadlocks and
  callers catch what they caught before; a lost connection is invalidated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from wsgi_app.database import begin_before_write, execute_reconnecting
from wsgi_app.extensions import db

_RAW_DIALECTS = frozenset({"mysql", "mariadb"})


class RawStatement:
    """One statement; :meth:`rows` for a SELECT, :meth:`insert` / :meth:`run` for writes."""

    __slots__ = ("_sql", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._sql: dict[str, str] = {}

    def _raw_sql(self, connection: Connection) -> str | None:
        dialect = connection.dialect
        if dialect.name not in _RAW_DIALECTS or dialect.driver != "pymysql":
            return None
        sql = self._sql.get(dialect.name)
        if sql is None:
            assert isinstance(self.statement, ClauseElement)
            sql = self._sql[dialect.name] = str(self.statement.compile(dialect=dialect))
        return sql

    def _execute(self, connection: Connection, sql: str, params: Mapping[str, Any]) -> Any:
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            begin_before_write(connection.dialect.name, cursor, sql)
            execute_reconnecting(cursor, sql, params)
        except connection.dialect.loaded_dbapi.Error as error:
            cursor.close()
            if connection.dialect.is_disconnect(error, dbapi_connection, cursor):
                connection.invalidate(error)
            raise exc.DBAPIError.instance(
                sql, dict(params), error, connection.dialect.loaded_dbapi.Error, dialect=connection.dialect
            ) from error
        return cursor

    def rows(self, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """All rows of a SELECT, as tuples."""
        connection = db.session.connection()
        sql = self._raw_sql(connection)
        if sql is None:
            return connection.execute(self.statement, dict(params)).all()
        cursor = self._execute(connection, sql, params)
        rows: Sequence[Sequence[Any]] = cursor.fetchall()
        cursor.close()
        return rows

    def insert(self, params: Mapping[str, Any]) -> int:
        """Run a single-row INSERT; its auto-increment id."""
        connection = db.session.connection()
        sql = self._raw_sql(connection)
        if sql is None:
            primary_key = connection.execute(self.statement, dict(params)).inserted_primary_key
            assert primary_key is not None  # a single-row INSERT always has one
            return int(primary_key[0])
        cursor = self._execute(connection, sql, params)
        cursor.close()
        return int(cursor.lastrowid)

    def run(self, params: Mapping[str, Any]) -> None:
        """Run a write whose result is not needed."""
        connection = db.session.connection()
        sql = self._raw_sql(connection)
        if sql is None:
            connection.execute(self.statement, dict(params))
            return
        self._execute(connection, sql, params).close()
