"""Writing many rows in one go: the timer sweep's inserts and updates.

On PostgreSQL each write is one statement over arrays (`unnest`): psycopg's executemany spends about
50 µs of Python per row, which made three quarters of a 10,000-deadline sweep. Other databases (SQLite)
get an ordinary executemany. Rows are dicts with the same keys; values are what the columns take.
"""

from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import Column, Connection, Table, bindparam, cast, insert, select, update
from sqlalchemy.types import JSON, TypeDecorator

from bot.persistence.direct import keep_prepared

SMALL = 8  # below this many rows the array statement saves nothing


def _array_type(conn: Connection, column: Column) -> str:
    return f"{column.type.compile(dialect=conn.dialect)}[]"


def _array_values(conn: Connection, column: Column, values: list[object]) -> list[object]:
    """What the driver gets for one column: the column type's own conversion (UTC for our datetimes),
    JSON wrapped for psycopg."""
    if isinstance(column.type, TypeDecorator):
        values = [column.type.process_bind_param(v, conn.dialect) for v in values]
    if isinstance(column.type, JSON):
        from psycopg.types.json import Json

        return [None if v is None else Json(v) for v in values]
    return values


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, object]]) -> None:
    """INSERT every row of `rows`; columns the rows leave out get their scalar default, or the server's."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or len(rows) < SMALL:
        conn.execute(_insert_statement(table), list(rows))
        return
    given = list(rows[0])
    defaults = {c.name: c.default.arg for c in table.columns  # type: ignore[union-attr]
                if c.name not in given and c.default is not None and c.default.is_scalar}
    columns = [table.c[name] for name in [*given, *defaults]]
    params = {f"p{i}": _array_values(conn, column, [row.get(column.name, defaults.get(column.name))
                                                    for row in rows])
              for i, column in enumerate(columns)}
    arrays = ", ".join(f"%(p{i})b::{_array_type(conn, column)}" for i, column in enumerate(columns))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "
                         f"SELECT * FROM unnest({arrays})", params)


@lru_cache(maxsize=16)
def _insert_statement(table: Table):  # type: ignore[no-untyped-def]
    return keep_prepared(insert(table))  # one object: its compiled form and cache key are kept


@lru_cache(maxsize=64)
def _update_statement(table: Table, key: str, version: str, names: tuple[str, ...]):  # type: ignore[no-untyped-def]
    return keep_prepared(
        update(table).where(table.c[key] == bindparam("b_key"), table.c[version] == bindparam("b_version"))
        .values({**{n: bindparam(f"v_{n}") for n in names}, version: table.c[version] + 1}))


def update_many(conn: Connection, table: Table, rows: Sequence[dict[str, object]], *, key: str = "id",
                version: str = "version") -> int:
    """UPDATE the row whose `key` and `version` match each of `rows`, setting the rows' other values and
    version + 1. Returns how many rows matched."""
    if not rows:
        return 0
    names = [name for name in rows[0] if name not in (key, version)]
    if conn.dialect.name != "postgresql" or len(rows) < SMALL:
        result = conn.execute(_update_statement(table, key, version, tuple(names)), [{"b_key": row[key], "b_version": row[version],
                                           **{f"v_{n}": row[n] for n in names}} for row in rows])
        return result.rowcount if result.rowcount != -1 else len(rows)
    columns = [table.c[key], table.c[version], *(table.c[n] for n in names)]
    aliases = ["b_key", "b_version", *(f"v{i}" for i in range(len(names)))]
    params = {alias: _array_values(conn, column, [row[column.name] for row in rows])
              for alias, column in zip(aliases, columns)}
    arrays = ", ".join(f"%({alias})b::{_array_type(conn, column)}" for alias, column in zip(aliases, columns))
    sets = ", ".join([*(f"{n} = v.{alias}" for n, alias in zip(names, aliases[2:])), f"{version} = t.{version} + 1"])
    result = conn.exec_driver_sql(
        f"UPDATE {table.name} AS t SET {sets} FROM unnest({arrays}) AS v({', '.join(aliases)}) "
        f"WHERE t.{key} = v.b_key AND t.{version} = v.b_version", params)
    return result.rowcount


def update_and_insert(conn: Connection, table: Table, row: dict[str, object],
                      inserts: Sequence[tuple[Table, dict[str, object]]], *, key: str = "id",
                      version: str = "version") -> int:
    """UPDATE one row (its `key` and `version` must match; version + 1) and, only if it matched, INSERT
    each (table, row) of `inserts`. On PostgreSQL this is one statement (data-modifying WITH), which
    saves the driver's work and a round trip per insert. Returns 1 if the row matched, else 0."""
    if conn.dialect.name != "postgresql" or not inserts:
        matched = update_many(conn, table, [row], key=key, version=version)
        if matched:
            for other, values in inserts:
                conn.execute(_insert_statement(other), values)
        return matched
    names = tuple(n for n in row if n not in (key, version))
    shape = tuple((other, tuple(values)) for other, values in inserts)
    params = {"b_key": row[key], "b_version": row[version], **{f"v_{n}": row[n] for n in names}}
    for i, (_, values) in enumerate(inserts):
        params.update({f"i{i}_{n}": v for n, v in values.items()})
    return conn.execute(_update_and_insert_statement(table, key, version, names, shape), params).rowcount


@lru_cache(maxsize=64)
def _update_and_insert_statement(table: Table, key: str, version: str, names: tuple[str, ...],
                                 shape: tuple[tuple[Table, tuple[str, ...]], ...]):  # type: ignore[no-untyped-def]
    moved = _update_statement(table, key, version, names).returning(table.c[key]).cte("moved")

    def insert_from_moved(i: int, other: Table, columns: tuple[str, ...]):  # type: ignore[no-untyped-def]
        # Typed parameters: in a SELECT list PostgreSQL would otherwise take a string for text, not JSON.
        values = select(*(cast(bindparam(f"i{i}_{n}", type_=other.c[n].type), other.c[n].type) for n in columns))
        return insert(other).from_select(list(columns), values.select_from(moved))

    ctes = [moved] + [insert_from_moved(i, other, columns).cte(f"new_{i}") for i, (other, columns) in enumerate(shape[:-1])]
    last = len(shape) - 1
    return keep_prepared(insert_from_moved(last, *shape[last]).add_cte(*ctes))
