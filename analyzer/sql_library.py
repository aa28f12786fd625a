"""The SQL in `sql/`: each file answers one question and is run by name, never built from strings."""

from __future__ import annotations

from pathlib import Path

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
