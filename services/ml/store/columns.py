"""The typed columns of a Parquet export: their types inferred in SQL, and their rows.

A column is one projected path of ``fields`` (``data.a.b`` for ``fields=a.b``), or, with
no ``fields``, the whole document as JSON text (``data``). Its type is decided per export
from every matching document of the export's snapshot, in one aggregate query before the
first row is read (a Parquet file has one schema, written before its rows):

- only strings: ``string``; only booleans: ``bool``;
- only numbers: ``int64`` when every one is an integer that fits; integers beyond int64
  are ``json`` (their exact text: a double would drop digits); with a fraction among
  them, ``float64`` when every one is within a double's range, else ``json``;
- anything else (objects, arrays, a mix of JSON types): ``json``, the value's JSON text;
- a document without the field, or with ``null``: a null in any column (a column no
  document has is ``string``, all null).

Rows are then read in keyset batches (``(created_at, id)`` order, the NDJSON export's),
each cut by PostgreSQL where the rows before reach the byte budget (a window running sum,
as in :mod:`.query`), so the worker never holds more than the budget plus one document.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from services.ml.params import DocumentQuery, FieldTree
from services.ml.store.query import Args, next_rows, planned, where

#: Column kinds: the Parquet types they become are decided by :mod:`services.ml.parquet`.
KINDS = ("string", "bool", "int64", "float64", "json")
#: The row's metadata columns, before the data columns (as the NDJSON line carries them).
META = ("id", "version", "created_at", "updated_at")
_ROW_OVERHEAD = 48  # bytes counted per row beside its text: the id, version, two times


@dataclass(frozen=True)
class Column:
    """One data column: its name, the path it projects (None: the whole document), kind."""

    name: str
    path: tuple[str, ...] | None
    kind: str = "string"


def columns_of(fields: FieldTree | None) -> list[Column]:
    """The columns a projection asks for, in the order of ``fields`` (untyped yet)."""
    if not fields:
        return [Column("data", None, "json")]
    out: list[Column] = []

    def walk(tree: FieldTree, prefix: tuple[str, ...]) -> None:
        for key, sub in tree.items():
            path = (*prefix, key)
            if sub is None:
                out.append(Column("data." + ".".join(path), path))
            else:
                walk(sub, path)

    walk(fields, ())
    return out


_AGGREGATES = 7  # per column, in :func:`_kind`'s order


def _kind(
    string: bool,
    boolean: bool,
    number: bool,
    other: bool,
    integral: bool,
    int64: bool,
    double: bool,
) -> str:
    """The kind of a column from which JSON types its values have."""
    if other or string + boolean + number > 1:
        return "json"
    if string:
        return "string"
    if boolean:
        return "bool"
    if not number:
        return "string"
    if integral:
        return "int64" if int64 else "json"
    return "float64" if double else "json"


def _value(i: int) -> str:
    return f"v{i}"


async def infer(
    pg: asyncpg.Connection, cid: int, q: DocumentQuery, columns: list[Column]
) -> list[Column]:
    """``columns`` with their kinds, from the documents ``q`` matches in this snapshot."""
    paths = [c for c in columns if c.path is not None]
    if not paths:
        return columns
    args = Args()
    values = ", ".join(
        f"data #> {args.add(list(c.path or ()), 'text[]')} AS {_value(i)}"
        for i, c in enumerate(paths)
    )
    # Each value is extracted, typed and converted once (OFFSET 0 keeps PostgreSQL from
    # inlining a subquery into the aggregates, which repeats every expression per use).
    typeofs = ", ".join(
        f"jsonb_typeof({_value(i)}) AS t{i}, {_value(i)}" for i in range(len(paths))
    )
    numbers = ", ".join(
        f"t{i}, CASE WHEN t{i} = 'number' THEN {_value(i)}::numeric END AS n{i}"
        for i in range(len(paths))
    )
    aggregates = []
    for i in range(len(paths)):
        t, n = f"t{i}", f"n{i}"
        aggregates += [
            f"coalesce(bool_or({t} = 'string'), false)",
            f"coalesce(bool_or({t} = 'boolean'), false)",
            f"coalesce(bool_or({t} = 'number'), false)",
            f"coalesce(bool_or({t} IN ('object', 'array')), false)",
            f"coalesce(bool_and({n} = trunc({n})), true)",
            f"coalesce(bool_and({n} BETWEEN -9223372036854775808 AND 9223372036854775807), true)",
            # float8 refuses both overflow and underflow: only values within its range.
            f"coalesce(bool_and({n} = 0 OR abs({n}) BETWEEN 1e-307 AND 1e308), true)",
        ]
    sql = (
        f"SELECT {', '.join(aggregates)} FROM (SELECT {numbers} FROM ("  # noqa: S608
        f"SELECT {typeofs} FROM (SELECT {values} FROM ml_documents "
        f"WHERE {where(cid, q, args)} OFFSET 0) v OFFSET 0) t OFFSET 0) n"
    )
    row = await (await planned(pg, sql)).fetchrow(*args.values)
    k = _AGGREGATES
    kinds = iter([_kind(*row[k * i : k * i + k]) for i in range(len(paths))])
    return [c if c.path is None else dataclasses.replace(c, kind=next(kinds)) for c in columns]


def _typed(column: Column, v: str) -> str:
    """The SQL of a column's value from its JSON value ``v`` (NULL when absent or null)."""
    if column.path is None:
        return "data::text"
    casts = {"int64": "bigint", "float64": "float8", "bool": "boolean"}
    if column.kind == "string":
        return f"CASE WHEN jsonb_typeof({v}) = 'string' THEN {v} #>> '{{}}' END"
    if column.kind in casts:
        json_type = "boolean" if column.kind == "bool" else "number"
        cast = casts[column.kind]
        return f"CASE WHEN jsonb_typeof({v}) = '{json_type}' THEN {v}::{cast} END"
    return f"CASE WHEN jsonb_typeof({v}) <> 'null' THEN {v}::text END"


def batch_sql(
    cid: int, q: DocumentQuery, columns: list[Column], args: Args, rows: int, budget: int
) -> str:
    """The next rows (at most ``rows``), cut where the rows before reach ``budget`` bytes.

    Selects the metadata, the typed columns, each row's size and how many rows the batch
    had before the cut (fewer than ``rows``: the export ends with this batch).
    """
    values = ", ".join(
        f"data #> {args.add(list(c.path), 'text[]')} AS {_value(i)}"
        for i, c in enumerate(columns)
        if c.path is not None
    )
    inner = (
        "SELECT id, version, created_at, updated_at, data"  # noqa: S608
        + (f", {values}" if values else "")
        + f" FROM ml_documents WHERE {where(cid, q, args)} ORDER BY created_at, id "
        f"LIMIT {args.add(rows, 'int')}"
    )
    names = [f"c{i}" for i in range(len(columns))]
    typed = ", ".join(f"{_typed(c, _value(i))} AS {names[i]}" for i, c in enumerate(columns))
    texts = [names[i] for i, c in enumerate(columns) if c.kind in ("string", "json")]
    size = " + ".join(
        [f"{_ROW_OVERHEAD} + octet_length(id)"] + [f"coalesce(octet_length({t}), 0)" for t in texts]
    )
    cols = ", ".join([*META, *names])
    return (
        f"SELECT {cols}, size, total FROM ("  # noqa: S608
        f"SELECT {cols}, size, count(*) OVER () AS total, "
        "sum(size) OVER (ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) - size AS before "
        f"FROM (SELECT {cols}, {size} AS size FROM (SELECT id, version, created_at, updated_at, "
        f"{typed} FROM ({inner}) i OFFSET 0) t) s) b WHERE before < {args.add(budget, 'bigint')} "
        "ORDER BY created_at, id"
    )


@dataclass(frozen=True)
class Batch:
    """Rows column by column (metadata first), and their size as counted for the budget."""

    columns: list[list[Any]]
    size: int

    @property
    def rows(self) -> int:
        """How many rows."""
        return len(self.columns[0]) if self.columns else 0


async def batches(
    pg: asyncpg.Connection,
    cid: int,
    q: DocumentQuery,
    columns: list[Column],
    room: Callable[[], tuple[int, int]],
    first_rows: int,
) -> AsyncIterator[Batch]:
    """Every row ``q`` matches, in keyset batches, each within the ``room`` left then.

    ``room()`` says how many bytes and rows the consumer can still take (what is left of
    its row group): a batch holds at most that many rows, cut where the rows before reach
    that many bytes (one row always goes). The first batch asks for ``first_rows`` (what
    fits at the largest document size), the next ones for what fits at the sizes seen.
    """
    width = len(META) + len(columns)
    seen: tuple[int, int] | None = None  # (bytes, rows) of the last batch
    while True:
        space, rows_left = room()
        space, rows_left = max(1, space), max(1, rows_left)
        want = (
            min(first_rows, rows_left)
            if seen is None
            else next_rows(seen[0], seen[1], space, rows_left)
        )
        args = Args()
        sql = batch_sql(cid, q, columns, args, want, space)
        rows = await (await planned(pg, sql)).fetch(*args.values)
        if not rows:
            return
        size = sum(r[width] for r in rows)
        seen, last, ended = (size, len(rows)), rows[-1], rows[0][width + 1] < want
        batch = Batch([[r[i] for r in rows] for i in range(width)], size)
        del rows  # the records go before the batch is handed on: one copy held, not two
        yield batch
        if ended:
            return  # the batch had fewer rows than asked for: that was the end
        q = dataclasses.replace(q, after=(last[2], last[0]))
