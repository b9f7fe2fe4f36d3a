"""Where finished runs are kept: the `TraceStore` interface and its SQLAlchemy implementation.

One table, `traces`, holds each run's full JSON body beside the few columns that listing and filtering
need, so a listing never parses a body. SQLite is the default (one file in WAL mode, safe for the API's
worker threads); any SQLAlchemy URL works, e.g. Postgres when several replicas share one store.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url

from graph.errors import TraceCursorError, TraceStoreError
from graph.report import RunStatus, RunTrace, TracePage, TraceSummary
from graph.schemas import Label

MAX_LIMIT = 200
"""The largest page a listing returns."""
SNIPPET_CHARS = 200
"""How much of the input a listing row shows."""
TRACE_ID_CHARS = 64
"""The longest trace id the table holds."""
DEFAULT_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite statement waits for another connection's lock before failing."""

_COUNTS = ("sentences", "check_worthy", "checked", "supported", "refuted", "not_enough_info", "errors")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_MAX_CURSOR_CHARS = 512

_metadata = sa.MetaData()
traces = sa.Table(
    "traces",
    _metadata,
    sa.Column("trace_id", sa.String(TRACE_ID_CHARS), primary_key=True),
    # A fixed-width UTC ISO string rather than DateTime: SQLite has no timezone-aware type, and string
    # order is time order on every backend, which keyset pagination relies on.
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(255), nullable=True, index=True),
    sa.Column("snippet", sa.String(SNIPPET_CHARS), nullable=False),
    # Casefolded here rather than lower()ed in SQL: SQLite's lower() folds ASCII only.
    sa.Column("search_text", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    *(sa.Column(name, sa.Integer, nullable=False) for name in _COUNTS),
    # "|REFUTED|SUPPORTED|": a LIKE on one column filters by verdict without a child table.
    sa.Column("verdicts", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_traces_created_at_trace_id", "created_at", "trace_id"),
)


@dataclass(frozen=True)
class TraceQuery:
    """Which traces a listing returns and where its page starts; a filter left None is off."""

    limit: int = 20
    """Items per page, 1 to `MAX_LIMIT`."""
    cursor: str | None = None
    """The previous page's `next_cursor`; None for the first page. Keep the other fields unchanged."""
    verdict: Label | None = None
    """Only runs with at least one claim given this verdict."""
    status: RunStatus | None = None
    """Only runs that ended with this status."""
    text: str | None = None
    """Only runs whose input contains this, ignoring case."""
    owner: str | None = None
    """The owner to scope to, when `owner_scoped`; None then means unowned traces."""
    owner_scoped: bool = False
    """Only traces whose owner equals `owner`; False: every owner's traces."""
    since: datetime | None = None
    """Only runs created at or after this (a naive datetime is taken as UTC)."""
    until: datetime | None = None
    """Only runs created before this (a naive datetime is taken as UTC)."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")


@runtime_checkable
class TraceStore(Protocol):
    """Saves, finds, lists and deletes run traces; safe to call from several threads at once."""

    @property
    def url(self) -> str:
        """Where the store lives, any password masked."""

    def save(self, trace: RunTrace) -> None:
        """Store a trace, replacing the one with the same trace_id, all at once."""

    def get(self, trace_id: str, *, owner: str | None = None, owner_scoped: bool = False) -> RunTrace | None:
        """The trace with this id, or None when there is none (or, scoped, another owner's)."""

    def list(self, query: TraceQuery) -> TracePage:
        """One page of matching traces, newest first."""

    def delete(self, trace_id: str, *, owner: str | None = None, owner_scoped: bool = False) -> bool:
        """Delete a trace; False when there was none (or, scoped, it is another owner's)."""

    def ping(self) -> None:
        """Raise `TraceStoreError` unless the store answers."""

    def close(self) -> None:
        """Release the store's connections."""


class SqlTraceStore:
    """A `TraceStore` on any SQLAlchemy database; SQLite files get WAL mode and a busy timeout."""

    def __init__(self, url: str | URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        """Open the store at a SQLAlchemy URL, creating the SQLite file's folder and the table if needed.

        Args:
            url: Where the store lives.
            busy_timeout_ms: How long a SQLite statement waits for another writer's lock before it fails.

        Raises:
            TraceStoreError: the URL is invalid or in-memory SQLite, its driver is missing, or the
                database cannot be reached or written.
        """
        self._url = mask_url(url)
        try:
            parsed = make_url(url)
        except sa.exc.ArgumentError as exc:
            raise TraceStoreError(f"trace store {self._url}: not a database URL: {exc}") from exc
        self._engine = _create_engine(parsed, self._url, busy_timeout_ms)
        try:
            with self._guard("create the traces table"):
                _metadata.create_all(self._engine)
        except TraceStoreError:
            self._engine.dispose()
            raise

    @property
    def url(self) -> str:
        """Where the store lives, any password masked."""
        return self._url

    def save(self, trace: RunTrace) -> None:
        """Store a trace, replacing the one with the same trace_id, in one transaction."""
        row = _row(trace)
        with self._guard(f"save trace {row['trace_id']!r}"), self._engine.begin() as conn:
            dialect = self._engine.dialect.name
            # A native upsert where there is one: two replicas saving the same new id cannot collide.
            if dialect == "sqlite":
                lite = sqlite.insert(traces).values(row)
                conn.execute(
                    lite.on_conflict_do_update(index_elements=["trace_id"], set_=_new(lite.excluded))
                )
            elif dialect == "postgresql":
                pg = postgresql.insert(traces).values(row)
                conn.execute(pg.on_conflict_do_update(index_elements=["trace_id"], set_=_new(pg.excluded)))
            else:
                conn.execute(sa.delete(traces).where(traces.c.trace_id == row["trace_id"]))
                conn.execute(sa.insert(traces).values(row))

    def get(self, trace_id: str, *, owner: str | None = None, owner_scoped: bool = False) -> RunTrace | None:
        """The trace with this id, or None when there is none (or, scoped, another owner's)."""
        stmt = sa.select(traces.c.body).where(traces.c.trace_id == trace_id, *_owned(owner, owner_scoped))
        with self._guard(f"read trace {trace_id!r}"):
            with self._engine.connect() as conn:
                body = conn.execute(stmt).scalar_one_or_none()
            return None if body is None else RunTrace.model_validate_json(body)

    def list(self, query: TraceQuery) -> TracePage:
        """One page of matching traces, newest first (ties broken by trace_id, descending).

        Raises:
            TraceCursorError: `query.cursor` is not one this store handed out.
        """
        where = _filters(query)
        if query.cursor is not None:
            created_at, trace_id = _decode_cursor(query.cursor)
            where.append(
                sa.or_(
                    traces.c.created_at < created_at,
                    sa.and_(traces.c.created_at == created_at, traces.c.trace_id < trace_id),
                )
            )
        columns = [traces.c[name] for name in ("trace_id", "created_at", "status", "snippet", "duration_ms")]
        stmt = (
            sa.select(*columns, *(traces.c[name] for name in _COUNTS))
            .where(*where)
            .order_by(traces.c.created_at.desc(), traces.c.trace_id.desc())
            .limit(query.limit + 1)  # one more than shown tells whether another page exists
        )
        with self._guard("list traces"):
            with self._engine.connect() as conn:
                rows = conn.execute(stmt).all()
            items = [_summary(row._mapping) for row in rows[: query.limit]]
        last = rows[query.limit - 1] if len(rows) > query.limit else None
        return TracePage(
            items=items, next_cursor=None if last is None else _cursor(last.created_at, last.trace_id)
        )

    def delete(self, trace_id: str, *, owner: str | None = None, owner_scoped: bool = False) -> bool:
        """Delete a trace; False when there was none (or, scoped, it is another owner's)."""
        stmt = sa.delete(traces).where(traces.c.trace_id == trace_id, *_owned(owner, owner_scoped))
        with self._guard(f"delete trace {trace_id!r}"), self._engine.begin() as conn:
            return conn.execute(stmt).rowcount > 0

    def ping(self) -> None:
        """Raise `TraceStoreError` unless the database answers a query."""
        with self._guard("reach the database"), self._engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Close the pooled connections; the store can still reconnect if used again."""
        self._engine.dispose()

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn database and stored-data failures into `TraceStoreError`, naming the masked URL."""
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            # The driver's message alone: SQLAlchemy's own adds the statement and its parameters (user text).
            reason = getattr(exc, "orig", None) or exc
            raise TraceStoreError(f"trace store {self._url}: cannot {action}: {_describe(reason)}") from exc
        except ValidationError as exc:
            raise TraceStoreError(
                f"trace store {self._url}: cannot {action}: stored data does not match the trace schema "
                f"({exc.error_count()} errors)"
            ) from exc


def open_trace_store(target: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> SqlTraceStore:
    """Open the store at a SQLAlchemy URL (anything containing "://") or else at a SQLite file path.

    In-memory SQLite (":memory:", "sqlite://") is refused: the pool would give each connection its own
    empty database. Tests use a file under a temporary directory instead.

    Raises:
        TraceStoreError: the store cannot be opened (see `SqlTraceStore`).
    """
    if "://" in target:
        return SqlTraceStore(target, busy_timeout_ms=busy_timeout_ms)
    if target.strip() in ("", ":memory:"):
        raise TraceStoreError(f"trace store {target!r}: in-memory SQLite is not supported; give a file path")
    # Built as a URL object, not a string: a path may hold characters a URL string would misread.
    path = str(Path(target).expanduser().absolute())
    return SqlTraceStore(URL.create("sqlite", database=path), busy_timeout_ms=busy_timeout_ms)


def mask_url(url: str | URL) -> str:
    """The URL with any password shown as ***, safe for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        # Unparseable, yet it may still hold "user:secret@": mask that much.
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", str(url))


def _create_engine(url: URL, masked: str, busy_timeout_ms: int) -> Engine:
    """An engine for the URL; for SQLite, connections usable from any thread, pragmas set on connect."""
    try:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        database = url.database or ""
        if database in ("", ":memory:") or "mode=memory" in database:
            raise TraceStoreError(f"trace store {masked}: in-memory SQLite is not supported; use a file")
        folder = Path(database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TraceStoreError(f"trace store {masked}: cannot create the folder {folder}: {exc}") from exc
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
    except (ImportError, sa.exc.SQLAlchemyError) as exc:
        raise TraceStoreError(f"trace store {masked}: cannot open: {_describe(exc)}") from exc
    sa.event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms=busy_timeout_ms))
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int) -> None:
    """Set the per-connection SQLite pragmas."""
    cursor = dbapi_connection.cursor()
    # The timeout first, so switching to WAL waits for a concurrent opener instead of failing. WAL lets
    # readers and the writer work at once; NORMAL is safe with it (an OS crash may lose the last
    # commits, never corrupt the file).
    pragmas = (
        f"busy_timeout={int(busy_timeout_ms)}",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
    )
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _describe(exc: BaseException) -> str:
    """The exception as "TypeName: message", on one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _stamp(moment: datetime) -> str:
    """A fixed-width UTC ISO timestamp whose string order is time order (naive is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _row(trace: RunTrace) -> dict[str, Any]:
    """The table row for a trace."""
    header = trace.header
    if not 0 < len(header.trace_id) <= TRACE_ID_CHARS:
        raise ValueError(f"trace_id must have 1 to {TRACE_ID_CHARS} characters, got {len(header.trace_id)}")
    labels = sorted({claim.verdict for claim in trace.claims})
    return {
        "trace_id": header.trace_id,
        "created_at": _stamp(header.created_at),
        "status": header.status,
        "owner": header.owner,
        "snippet": trace.text[:SNIPPET_CHARS],
        "search_text": trace.text.casefold(),
        "duration_ms": header.duration_ms,
        **{name: getattr(trace.summary, name) for name in _COUNTS},
        "verdicts": "".join(f"|{label}" for label in labels) + "|",
        "body": trace.model_dump_json(),
    }


def _new(excluded: Any) -> dict[str, Any]:
    """Every non-key column taken from the row an upsert tried to insert."""
    return {column.name: excluded[column.name] for column in traces.columns if not column.primary_key}


def _owned(owner: str | None, scoped: bool) -> list[sa.ColumnElement[bool]]:
    """The owner condition: none unless scoped; scoped to None means unowned traces."""
    if not scoped:
        return []
    return [traces.c.owner.is_(None) if owner is None else traces.c.owner == owner]


def _filters(query: TraceQuery) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of a query, its cursor aside."""
    where = _owned(query.owner, query.owner_scoped)
    if query.verdict is not None:
        where.append(traces.c.verdicts.contains(f"|{query.verdict}|", autoescape=True))
    if query.status is not None:
        where.append(traces.c.status == query.status)
    if query.text:
        where.append(traces.c.search_text.contains(query.text.casefold(), autoescape=True))
    if query.since is not None:
        where.append(traces.c.created_at >= _stamp(query.since))
    if query.until is not None:
        where.append(traces.c.created_at < _stamp(query.until))
    return where


def _summary(row: Any) -> TraceSummary:
    """A listing row from a table row's mapping."""
    fields = {name: row[name] for name in ("trace_id", "status", "snippet", "duration_ms")}
    created_at = datetime.fromisoformat(row["created_at"])
    summary = {name: row[name] for name in _COUNTS}
    return TraceSummary.model_validate({**fields, "created_at": created_at, "summary": summary})


def _cursor(created_at: str, trace_id: str) -> str:
    """An opaque cursor for the page after the row with this key."""
    raw = json.dumps([created_at, trace_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    """The (created_at, trace_id) key inside a cursor, checked to be one `_cursor` could have made."""
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        padded = (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
        value = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise ValueError("not a [created_at, trace_id] pair")
        created_at, trace_id = value
        if not (_STAMP.fullmatch(created_at) and 0 < len(trace_id) <= TRACE_ID_CHARS):
            raise ValueError("not a timestamp and a trace id")
        datetime.fromisoformat(created_at)  # right shape, yet maybe an impossible date
    except (binascii.Error, ValueError) as exc:  # also UnicodeError and JSONDecodeError
        raise TraceCursorError(
            f"malformed trace cursor {cursor[:40]!r} ({exc}): pass back a next_cursor exactly as received"
        ) from exc
    return created_at, trace_id
