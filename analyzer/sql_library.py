"""The SQL in `sql/`: each file answers one question and is run by name, never built from strings."""

from __future__ import annotations

from pathlib import Path

import duckdb

from analyzer.config import SQL_DIR


def load_sql(name: str, sql_dir: Path = SQL_DIR) -> str:
    """Return the text of `sql/<name>.sql`."""
    return (sql_dir / f"{name}.sql").read_text(encoding="utf-8")


def sql_header(name: str, sql_dir: Path = SQL_DIR) -> str:
    """The leading comment of a SQL file: the question it answers."""
    lines = []
    for line in load_sql(name, sql_dir).splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)


def define_macro(connection: duckdb.DuckDBPyConnection, name: str, sql_file: str) -> None:
    """Run `sql/<sql_file>.sql` unless the database already has the table macro `name`.

    For queries that read a macro of the store on a connection that may hold only a `documents`
    table (the estimators' own tests and callers), without rewriting the store's catalog each call."""
    defined = connection.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = $name", {"name": name}
    ).fetchall()[0][0]
    if not defined:
        connection.execute(load_sql(sql_file))
