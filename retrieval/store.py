"""The passage store: SQLite, held in memory while an index is open and written out on save."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from retrieval.errors import IndexLoadError, QueryError
from retrieval.types import Passage, vector_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS passages (
    vid INTEGER PRIMARY KEY,       -- the int64 FAISS id, a hash of the passage id
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS passages_source ON passages(source);
"""
#: Filterable columns; any other filter key is looked up in the metadata JSON.
_COLUMNS = ("id", "title", "source", "url")
Filters = Mapping[str, "str | int | float | bool | Sequence[str | int | float | bool]"]


def _row_to_passage(row: sqlite3.Row) -> Passage:
    return Passage(
        id=row["id"],
        text=row["text"],
        title=row["title"],
        source=row["source"],
        url=row["url"],
        metadata=json.loads(row["metadata"]),
    )


class PassageStore:
    """Passages keyed by their FAISS id, in an in-memory SQLite database."""

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        self.conn = conn or sqlite3.connect(":memory:", check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(_SCHEMA)

    @classmethod
    def open(cls, path: Path) -> PassageStore:
        """Copy a saved store into memory, so the index directory is never written in place.

        Raises:
            IndexLoadError: when the file is missing or not a passage database.
        """
        if not path.is_file():
            raise IndexLoadError(f"{path}: passage store missing")
        mem = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                src.backup(mem)
            finally:
                src.close()
            mem.execute("SELECT vid, id, text, title, source, url, metadata FROM passages LIMIT 1")
        except sqlite3.DatabaseError as exc:
            mem.close()
            raise IndexLoadError(f"{path}: not a readable passage store ({exc})") from exc
        return cls(mem)

    def save(self, path: Path) -> None:
        """Write the whole store to ``path`` (a new file)."""
        dest = sqlite3.connect(path)
        try:
            self.conn.backup(dest)
        finally:
            dest.close()

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0])

    def _rows_where_in(self, columns: str, key: str, values: Sequence[Any]) -> Iterator[sqlite3.Row]:
        """``SELECT columns ... WHERE key IN values``, in chunks under SQLite's parameter limit."""
        for start in range(0, len(values), 900):
            chunk = list(values[start : start + 900])
            marks = ",".join("?" * len(chunk))
            yield from self.conn.execute(f"SELECT {columns} FROM passages WHERE {key} IN ({marks})", chunk)

    def get_text(self, passage_id: str) -> str | None:
        """The text stored under ``passage_id``, or None."""
        return self.texts_of([passage_id]).get(passage_id)

    def texts_of(self, passage_ids: Sequence[str]) -> dict[str, str]:
        """Stored texts by passage id, for the ids that exist."""
        return {row["id"]: row["text"] for row in self._rows_where_in("id, text", "id", passage_ids)}

    def insert(self, passages: Iterable[Passage]) -> None:
        """Insert new passages (the caller has checked they are new)."""
        with self.conn:
            self.conn.executemany(
                "INSERT INTO passages (vid, id, text, title, source, url, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (vector_id(p.id), p.id, p.text, p.title, p.source, p.url, p.metadata_json())
                    for p in passages
                ),
            )

    def delete(self, passage_ids: Sequence[str]) -> list[int]:
        """Delete by passage id; returns the FAISS ids of those that existed."""
        # An id given twice is one passage: count it once.
        vids = list(dict.fromkeys(vector_id(pid) for pid in passage_ids))
        present = self.existing_vids(vids)
        with self.conn:
            self.conn.executemany("DELETE FROM passages WHERE vid = ?", ((v,) for v in present))
        return present

    def existing_vids(self, vids: Sequence[int]) -> list[int]:
        """The subset of ``vids`` that is stored, in the given order."""
        found = {int(row["vid"]) for row in self._rows_where_in("vid", "vid", vids)}
        return [v for v in vids if v in found]

    def fetch(self, vids: Sequence[int]) -> dict[int, Passage]:
        """Passages by FAISS id."""
        return {int(row["vid"]): _row_to_passage(row) for row in self._rows_where_in("*", "vid", vids)}

    def iter_all(self, batch: int = 5000) -> Iterator[tuple[int, Passage]]:
        """Every passage with its FAISS id, in insertion order."""
        cursor = self.conn.execute("SELECT * FROM passages ORDER BY rowid")
        while rows := cursor.fetchmany(batch):
            for row in rows:
                yield int(row["vid"]), _row_to_passage(row)

    def all_vids(self) -> list[int]:
        """Every FAISS id, in insertion order."""
        return [int(r[0]) for r in self.conn.execute("SELECT vid FROM passages ORDER BY rowid")]

    def filter_vids(self, filters: Filters) -> list[int]:
        """FAISS ids of passages whose fields equal (or are one of) the filter values.

        Raises:
            QueryError: when a filter value is empty or of an unsupported type.
        """
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in filters.items():
            values = list(value) if isinstance(value, list | tuple | set) else [value]
            if not values:
                raise QueryError(f"filter {key!r} has no values")
            if any(not isinstance(v, str | int | float | bool) for v in values):
                raise QueryError(f"filter {key!r}: values must be strings, numbers or booleans")
            field = key if key in _COLUMNS else None
            expr = field or "json_extract(metadata, ?)"
            if field is None:
                params.append(f"$.{json.dumps(key)}")
            clauses.append(f"{expr} IN ({','.join('?' * len(values))})")
            params.extend(values)
        sql = "SELECT vid FROM passages" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        return [int(r[0]) for r in self.conn.execute(sql, params)]

    def content_digest(self) -> str:
        """A hash of every (id, text) pair in id order: equal content, equal digest."""
        import hashlib

        h = hashlib.sha256()
        for pid, text in self.conn.execute("SELECT id, text FROM passages ORDER BY id"):
            h.update(pid.encode())
            h.update(b"\0")
            h.update(text.encode())
            h.update(b"\1")
        return h.hexdigest()
