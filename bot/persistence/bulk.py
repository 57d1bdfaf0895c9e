"""Writing many rows in one go: the timer sweep's inserts and updates.

On PostgreSQL each write is one statement over arrays (`unnest`): psycopg's executemany spends about
50 µs of Python per row, which made three quarters of a 10,000-deadline sweep. Other databases (SQLite)
get an ordinary executemany. Rows are dicts with the same keys; values are what the columns take.
"""

from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import Column, Connection, Table, bindparam, insert, update
from sqlalchemy.types import JSON, TypeDecorator

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
    return insert(table)  # one object: SQLAlchemy keeps its compiled form and cache key


@lru_cache(maxsize=64)
def _update_statement(table: Table, key: str, version: str, names: tuple[str, ...]):  # type: ignore[no-untyped-def]
    return (update(table).where(table.c[key] == bindparam("b_key"), table.c[version] == bindparam("b_version"))
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


def insert_with(conn: Connection, table: Table, row: dict[str, object], also: Table | None,
                also_row: dict[str, object] | None) -> None:
    """INSERT `row` into `table` and, when given, `also_row` into `also`: on PostgreSQL in one statement
    (a data-modifying WITH), which saves a round trip and the driver's work for a second statement."""
    if also is None or also_row is None:
        conn.execute(_insert_statement(table), row)
        return
    if conn.dialect.name != "postgresql":
        conn.execute(_insert_statement(table), row)
        conn.execute(_insert_statement(also), also_row)
        return
    conn.execute(_insert_pair(table, tuple(row), also, tuple(also_row)),
                 {**{f"a_{k}": v for k, v in row.items()}, **{f"b_{k}": v for k, v in also_row.items()}})


@lru_cache(maxsize=16)
def _insert_pair(table: Table, names: tuple[str, ...], also: Table, also_names: tuple[str, ...]):  # type: ignore[no-untyped-def]
    first = insert(table).values({n: bindparam(f"a_{n}") for n in names}).cte(f"new_{table.name}")
    return insert(also).values({n: bindparam(f"b_{n}") for n in also_names}).add_cte(first)
