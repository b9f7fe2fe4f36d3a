"""The SQL trace store on SQLite files: roundtrips, filters, keyset pagination, owners and failures."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from graph.errors import TraceCursorError, TraceStoreError
from graph.report import (
    ClaimResult,
    EvidenceHit,
    RunHeader,
    RunStatus,
    RunTrace,
    ScoredSentence,
    Summary,
    TraceEvent,
)
from graph.schemas import Label
from graph.tracestore import (
    SqlTraceStore,
    TraceQuery,
    TraceStore,
    mask_url,
    open_trace_store,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALL_VERDICTS: tuple[Label, ...] = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")


def make_trace(
    trace_id: str,
    *,
    created_at: datetime = T0,
    verdicts: Sequence[Label] = ALL_VERDICTS,
    status: RunStatus = "ok",
    owner: str | None = None,
    topic: str = "unemployment",
) -> RunTrace:
    """A realistic run: one claim per verdict, a sentence of chatter, counts that match, a few events."""
    parts = [f"The {topic} rate rose by {3 + i} percent in {2010 + i}." for i in range(len(verdicts))]
    parts.append("We will see what happens next.")
    text = " ".join(parts)
    sentences, claims, start = [], [], 0
    for index, part in enumerate(parts):
        end = start + len(part)
        is_claim = index < len(verdicts)
        sentences.append(
            ScoredSentence(
                index=index,
                text=part,
                start=start,
                end=end,
                score=0.9 if is_claim else 0.1,
                check_worthy=is_claim,
                selected=is_claim,
            )
        )
        if is_claim:
            passage = EvidenceHit(id=f"doc{index}", text=f"Official {topic} figures.", rank=1, score=0.8)
            claims.append(
                ClaimResult(
                    claim_id=f"c{index}",
                    sentence_index=index,
                    text=part,
                    start=start,
                    end=end,
                    score=0.9,
                    verdict=verdicts[index],
                    confidence=0.7,
                    rationale="The passage states the figure.",
                    citations=[passage.id] if verdicts[index] != "NOT_ENOUGH_INFO" else [],
                    evidence=[passage.model_copy(update={"cited": verdicts[index] != "NOT_ENOUGH_INFO"})],
                    judge="nli",
                )
            )
        start = end + 1
    summary = Summary(
        sentences=len(parts),
        check_worthy=len(verdicts),
        checked=len(verdicts),
        supported=list(verdicts).count("SUPPORTED"),
        refuted=list(verdicts).count("REFUTED"),
        not_enough_info=list(verdicts).count("NOT_ENOUGH_INFO"),
        errors=0,
    )
    events = [
        TraceEvent(node="split", started_at=created_at, duration_ms=1.5, outputs={"sentences": len(parts)}),
        TraceEvent(node="detect", started_at=created_at, duration_ms=12.0, decisions=[{"threshold": 0.5}]),
    ]
    header = RunHeader(
        trace_id=trace_id,
        created_at=created_at,
        finished_at=created_at + timedelta(milliseconds=250),
        duration_ms=250.0,
        status=status,
        status_reason=None if status == "ok" else "a claim's judge failed",
        options={"threshold": 0.5, "top_k": 5},
        versions={"verifact": "0.1.0"},
        owner=owner,
    )
    return RunTrace(
        header=header,
        text=text,
        sentences=sentences,
        claims=claims,
        summary=summary,
        events=events,
        path=["split", "detect", "retrieve", "judge", "report"],
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's SQLite file lives."""
    return tmp_path / "traces" / "traces.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqlTraceStore]:
    """A fresh store on a file in the test's temporary directory."""
    opened = open_trace_store(str(db_path))
    yield opened
    opened.close()


def ids(store: SqlTraceStore, **query: Any) -> list[str]:
    """The trace ids of the first page of a listing."""
    return [item.trace_id for item in store.list(TraceQuery(limit=200, **query)).items]


def test_the_sql_store_satisfies_the_protocol_and_answers_a_ping(store: SqlTraceStore) -> None:
    assert isinstance(store, TraceStore)
    store.ping()
    assert store.url.startswith("sqlite:///") and store.url.endswith("traces.db")


def test_save_then_get_returns_an_equal_trace(store: SqlTraceStore) -> None:
    trace = make_trace("t1", owner="key-1")
    store.save(trace)
    assert store.get("t1") == trace
    assert store.get("missing") is None


def test_traces_survive_a_new_store_on_the_same_file(db_path: Path) -> None:
    trace = make_trace("t1")
    first = open_trace_store(str(db_path))
    first.save(trace)
    first.close()
    second = open_trace_store(str(db_path))
    try:
        assert second.get("t1") == trace
    finally:
        second.close()


def test_saving_the_same_id_again_replaces_the_trace(store: SqlTraceStore) -> None:
    store.save(make_trace("t1", verdicts=["SUPPORTED"], status="ok"))
    replacement = make_trace("t1", verdicts=["REFUTED", "REFUTED"], status="partial", topic="inflation")
    store.save(replacement)
    assert store.get("t1") == replacement
    page = store.list(TraceQuery())
    assert [item.trace_id for item in page.items] == ["t1"]
    assert page.items[0].summary.refuted == 2 and page.items[0].status == "partial"
    assert ids(store, verdict="SUPPORTED") == []
    assert ids(store, text="unemployment") == []


def test_listing_is_newest_first_with_summaries_that_match_the_traces(store: SqlTraceStore) -> None:
    traces = [make_trace(f"t{i}", created_at=T0 + timedelta(minutes=i)) for i in range(4)]
    for trace in [traces[2], traces[0], traces[3], traces[1]]:
        store.save(trace)
    page = store.list(TraceQuery())
    assert [item.trace_id for item in page.items] == ["t3", "t2", "t1", "t0"]
    assert page.next_cursor is None
    first = page.items[0]
    assert first.created_at == traces[3].header.created_at
    assert first.summary == traces[3].summary
    assert first.snippet == traces[3].text[:200]
    assert first.duration_ms == 250.0


def test_snippet_holds_the_first_200_characters(store: SqlTraceStore) -> None:
    trace = make_trace("long", verdicts=ALL_VERDICTS * 5)
    assert len(trace.text) > 200
    store.save(trace)
    assert store.list(TraceQuery()).items[0].snippet == trace.text[:200]


def test_filter_by_verdict_keeps_runs_with_at_least_one_such_claim(store: SqlTraceStore) -> None:
    store.save(make_trace("sup", verdicts=["SUPPORTED"]))
    store.save(make_trace("ref", verdicts=["REFUTED", "SUPPORTED"], created_at=T0 + timedelta(seconds=1)))
    store.save(make_trace("nei", verdicts=["NOT_ENOUGH_INFO"], created_at=T0 + timedelta(seconds=2)))
    store.save(make_trace("none", verdicts=[], created_at=T0 + timedelta(seconds=3)))
    assert ids(store, verdict="SUPPORTED") == ["ref", "sup"]
    assert ids(store, verdict="REFUTED") == ["ref"]
    assert ids(store, verdict="NOT_ENOUGH_INFO") == ["nei"]
    assert len(ids(store)) == 4


def test_filter_by_status(store: SqlTraceStore) -> None:
    store.save(make_trace("ok"))
    store.save(make_trace("partial", status="partial", created_at=T0 + timedelta(seconds=1)))
    store.save(make_trace("error", status="error", created_at=T0 + timedelta(seconds=2)))
    assert ids(store, status="partial") == ["partial"]
    assert ids(store, status="error") == ["error"]
    assert ids(store, status="ok") == ["ok"]


def test_filter_by_text_ignores_case_beyond_ascii_and_treats_wildcards_literally(
    store: SqlTraceStore,
) -> None:
    store.save(make_trace("jobs", topic="Unemployment"))
    store.save(make_trace("school", topic="école", created_at=T0 + timedelta(seconds=1)))
    store.save(make_trace("pct", topic="50%_growth", created_at=T0 + timedelta(seconds=2)))
    store.save(make_trace("pcx", topic="50x-growth", created_at=T0 + timedelta(seconds=3)))
    store.save(make_trace("summer", topic="ÉTÉ", created_at=T0 + timedelta(seconds=4)))
    assert ids(store, text="UNEMPLOYMENT rate") == ["jobs"]
    # SQLite's LIKE folds ASCII case by itself, so only non-ASCII letters show the casefolding.
    assert ids(store, text="ÉCOLE") == ["school"]
    assert ids(store, text="été") == ["summer"]
    assert ids(store, text="50%_g") == ["pct"]
    assert ids(store, text="no such words") == []


def test_since_is_inclusive_and_until_exclusive_across_time_zones(store: SqlTraceStore) -> None:
    for i in range(5):
        store.save(make_trace(f"t{i}", created_at=T0 + timedelta(hours=i)))
    plus_two = timezone(timedelta(hours=2))
    since = (T0 + timedelta(hours=1)).astimezone(plus_two)
    until = (T0 + timedelta(hours=3)).astimezone(plus_two)
    assert ids(store, since=since) == ["t4", "t3", "t2", "t1"]
    assert ids(store, until=until) == ["t2", "t1", "t0"]
    assert ids(store, since=since, until=until) == ["t2", "t1"]
    # A naive datetime is read as UTC.
    assert ids(store, since=datetime(2024, 5, 1, 15, 0)) == ["t4", "t3"]


def test_a_trace_stored_with_an_offset_reads_back_as_the_same_instant(store: SqlTraceStore) -> None:
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    store.save(make_trace("tz", created_at=local))
    store.save(make_trace("utc", created_at=T0 + timedelta(minutes=1)))
    page = store.list(TraceQuery())
    assert [item.trace_id for item in page.items] == ["utc", "tz"]
    assert page.items[1].created_at == local


def test_owner_scoping_hides_other_owners_traces(store: SqlTraceStore) -> None:
    store.save(make_trace("alice1", owner="alice"))
    store.save(make_trace("bob1", owner="bob", created_at=T0 + timedelta(seconds=1)))
    store.save(make_trace("anon", created_at=T0 + timedelta(seconds=2)))

    assert store.get("alice1", owner="bob", owner_scoped=True) is None
    assert store.get("alice1", owner=None, owner_scoped=True) is None
    assert store.get("alice1", owner="alice", owner_scoped=True) is not None
    assert store.get("anon", owner=None, owner_scoped=True) is not None
    assert store.get("anon", owner="alice", owner_scoped=True) is None
    # Unscoped, the owner argument is ignored.
    assert store.get("alice1", owner="bob") is not None

    assert ids(store, owner="alice", owner_scoped=True) == ["alice1"]
    assert ids(store, owner=None, owner_scoped=True) == ["anon"]
    assert ids(store, owner="alice") == ["anon", "bob1", "alice1"]

    assert store.delete("alice1", owner="bob", owner_scoped=True) is False
    assert store.get("alice1") is not None
    assert store.delete("alice1", owner="alice", owner_scoped=True) is True
    assert store.get("alice1") is None


def test_delete_then_get_returns_none(store: SqlTraceStore) -> None:
    store.save(make_trace("t1"))
    store.save(make_trace("t2"))
    assert store.delete("t1") is True
    assert store.get("t1") is None
    assert store.delete("t1") is False
    assert ids(store) == ["t2"]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 9, 10])
def test_cursor_pagination_walks_every_trace_once_even_with_equal_timestamps(
    store: SqlTraceStore, limit: int
) -> None:
    # Five traces share one created_at: the trace_id tiebreak must neither skip nor repeat them.
    times = [T0, T0, T0 + timedelta(seconds=1), *[T0 + timedelta(seconds=2)] * 5, T0 + timedelta(seconds=3)]
    for i, created_at in enumerate(times):
        store.save(make_trace(f"t{i}", created_at=created_at))
    expected = ["t8", "t7", "t6", "t5", "t4", "t3", "t2", "t1", "t0"]

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        page = store.list(TraceQuery(limit=limit, cursor=cursor))
        pages += 1
        assert page.items, "no page is empty"
        assert len(page.items) <= limit
        seen += [item.trace_id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 20, "pagination does not end"
    assert seen == expected
    assert pages == -(-len(expected) // limit)


def test_pagination_keeps_applying_the_filters(store: SqlTraceStore) -> None:
    for i in range(6):
        store.save(make_trace(f"t{i}", status="partial" if i % 2 else "ok", created_at=T0))
    first = store.list(TraceQuery(limit=2, status="partial"))
    assert first.next_cursor is not None
    second = store.list(TraceQuery(limit=2, status="partial", cursor=first.next_cursor))
    assert [item.trace_id for item in first.items + second.items] == ["t5", "t3", "t1"]
    assert second.next_cursor is None


def _encode(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _encode({"created_at": "2024-05-01T12:00:00.000000Z"}),
        _encode(["2024-05-01T12:00:00.000000Z"]),
        _encode(["2024-05-01T12:00:00.000000Z", 7]),
        _encode(["yesterday", "t1"]),
        _encode(["2024-13-45T12:00:00.000000Z", "t1"]),
        _encode(["2024-05-01T12:00:00.000000Z", ""]),
        _encode(["2024-05-01T12:00:00.000000Z", "x" * 65]),
        "A" * 1000,
    ],
)
def test_a_malformed_cursor_raises_a_cursor_error(store: SqlTraceStore, cursor: str) -> None:
    with pytest.raises(TraceCursorError, match="malformed trace cursor"):
        store.list(TraceQuery(cursor=cursor))


@pytest.mark.parametrize("limit", [0, -1, 201])
def test_a_limit_outside_1_to_200_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        TraceQuery(limit=limit)


def test_a_trace_id_too_long_for_the_table_is_refused(store: SqlTraceStore) -> None:
    with pytest.raises(ValueError, match="trace_id"):
        store.save(make_trace("x" * 65))


def test_the_sqlite_file_is_in_wal_mode(store: SqlTraceStore, db_path: Path) -> None:
    store.save(make_trace("t1"))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[1] for row in conn.execute("PRAGMA index_list(traces)")}
        columns = {
            tuple(row[2] for row in conn.execute(f"PRAGMA index_info('{name}')").fetchall()) for name in names
        }
    assert ("created_at", "trace_id") in columns
    assert ("owner",) in columns


def test_concurrent_saves_from_eight_threads_all_land(store: SqlTraceStore) -> None:
    def save_batch(worker: int) -> None:
        for i in range(5):
            store.save(make_trace(f"w{worker}-{i}", created_at=T0 + timedelta(seconds=i), owner=f"k{worker}"))
            store.list(TraceQuery(limit=5))

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(save_batch, worker) for worker in range(8)]:
            future.result()
    saved = ids(store)
    assert len(saved) == 40 and len(set(saved)) == 40
    assert store.get("w7-4") == make_trace("w7-4", created_at=T0 + timedelta(seconds=4), owner="k7")


def test_opening_a_path_under_a_file_raises_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a folder")
    with pytest.raises(TraceStoreError, match="cannot create the folder") as caught:
        open_trace_store(str(blocker / "traces.db"))
    assert str(blocker) in str(caught.value)


def test_opening_a_folder_as_the_database_raises_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(TraceStoreError, match="unable to open database file"):
        open_trace_store(str(folder))


def test_a_file_that_is_not_a_database_raises_a_store_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(TraceStoreError, match="file is not a database") as caught:
        open_trace_store(str(garbage))
    assert "garbage.db" in str(caught.value)


def test_a_corrupted_stored_body_raises_a_store_error_not_a_validation_error(
    store: SqlTraceStore, db_path: Path
) -> None:
    store.save(make_trace("t1"))
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE traces SET body = '{\"header\": 1}' WHERE trace_id = 't1'")
    with pytest.raises(TraceStoreError, match="does not match the trace schema"):
        store.get("t1")


def test_a_store_whose_table_vanished_raises_a_store_error_on_save(
    store: SqlTraceStore, db_path: Path
) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TABLE traces")
    with pytest.raises(TraceStoreError, match=r"cannot save trace 't1'.*no such table") as caught:
        store.save(make_trace("t1"))
    # The driver's reason only: neither the SQL nor its parameters (the user's text) leak out.
    assert "INSERT" not in str(caught.value) and "rose by" not in str(caught.value)


@pytest.mark.parametrize("target", [":memory:", "", "sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(target: str) -> None:
    with pytest.raises(TraceStoreError, match="in-memory SQLite is not supported"):
        open_trace_store(target)


def test_a_relative_path_is_opened_under_the_working_directory_with_folders_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    opened = open_trace_store("data/nested/traces.db")
    try:
        opened.save(make_trace("t1"))
    finally:
        opened.close()
    assert (tmp_path / "data" / "nested" / "traces.db").is_file()
    assert opened.url == f"sqlite:///{tmp_path / 'data' / 'nested' / 'traces.db'}"


def test_mask_url_hides_the_password() -> None:
    masked = mask_url("postgresql+psycopg://verifact:s3cr%40t@db.internal:5432/traces")
    assert "s3cr" not in masked
    assert masked == "postgresql+psycopg://verifact:***@db.internal:5432/traces"
    assert mask_url("sqlite:////var/lib/verifact/traces.db") == "sqlite:////var/lib/verifact/traces.db"
    assert "hunter2" not in mask_url("not a url://me:hunter2@host")


def test_a_postgres_store_that_cannot_open_reports_the_masked_url_only() -> None:
    # Port 1 on loopback refuses at once; without a driver installed, the import fails first.
    with pytest.raises(TraceStoreError) as caught:
        SqlTraceStore("postgresql://verifact:s3cret@127.0.0.1:1/traces?connect_timeout=2")
    message = str(caught.value)
    assert "s3cret" not in message
    assert "verifact:***@127.0.0.1:1/traces" in message
