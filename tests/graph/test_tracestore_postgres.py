"""The SQL trace store on a real PostgreSQL server: what several API replicas sharing one store rely on."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from graph.tracestore import SqlTraceStore, TraceQuery, TraceStore, open_trace_store
from tests.graph.test_tracestore import T0, ids, make_trace

pytestmark = pytest.mark.integration  # a throwaway PostgreSQL cluster on loopback

DATABASE = "verifact_test"
INSTALL_HINT = (
    "the PostgreSQL server binaries (initdb, pg_ctl) were not found under /usr/lib/postgresql/*/bin: "
    ".ci/run installs them (apt-get install postgresql); run it, or install the package yourself"
)


def server_bin() -> Path:
    """The newest installed PostgreSQL's bin folder; fails the test (never skips) when there is none."""
    found = [
        p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").is_file()
    ]
    if not found:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return max(found, key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster in a temporary folder, run as a non-root user."""

    bin: Path
    """The server's bin folder."""
    root: Path
    """The temporary folder holding the data directory, the socket and the log."""
    port: int
    """The TCP port on 127.0.0.1."""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def run(self, tool: str, *args: str) -> None:
        """Run a server tool, as the postgres user when we are root (the server refuses root)."""
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # cwd: root's working directory may be closed to the postgres user.
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            pytest.fail(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}\n{log}",
                pytrace=False,
            )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL server on a free loopback port with an empty `verifact_test` database, for this module."""
    bin_folder = server_bin()
    # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="verifact-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = Cluster(bin_folder, root, free_port())
    started = False
    try:
        # Trust on loopback only: a throwaway cluster that nothing else can reach.
        initdb = ["-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]
        server.run("initdb", *initdb, "--no-sync")
        options = f"-k {root} -p {server.port} -h 127.0.0.1 -c fsync=off -c full_page_writes=off"
        server.run("pg_ctl", "-D", str(server.data), "-o", options, "-l", str(server.log), "-w", "start")
        started = True
        server.run("createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", DATABASE)
        yield server
    finally:
        try:
            if started:
                server.run("pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def url(cluster: Cluster) -> str:
    """The cluster's URL, its traces table dropped so that each test starts from nothing."""
    engine = sa.create_engine(cluster.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS traces"))
    finally:
        engine.dispose()
    return cluster.url


@pytest.fixture
def store(url: str) -> Iterator[SqlTraceStore]:
    """A store on the test database, opened as the API opens `VERIFACT_TRACE_DB`."""
    opened = open_trace_store(url)
    yield opened
    opened.close()


@pytest.fixture
def replicas(url: str) -> Iterator[tuple[SqlTraceStore, SqlTraceStore]]:
    """Two stores on one database, as two API replicas would hold them."""
    first, second = SqlTraceStore(url), SqlTraceStore(url)
    yield first, second
    first.close()
    second.close()


def test_save_then_get_returns_an_equal_trace_and_delete_removes_it(store: SqlTraceStore) -> None:
    assert isinstance(store, TraceStore)
    store.ping()
    assert store.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    trace = make_trace("t1", owner="key-1", topic="école")
    store.save(trace)
    assert store.get("t1") == trace
    assert store.get("missing") is None
    assert store.delete("t1") is True
    assert store.get("t1") is None
    assert store.delete("t1") is False


def test_listing_is_newest_first_filtered_and_paged_by_cursor(store: SqlTraceStore) -> None:
    # Three traces share one created_at, so the trace_id tiebreak is exercised across page edges.
    times = [T0, T0 + timedelta(seconds=1), *[T0 + timedelta(seconds=2)] * 3, T0 + timedelta(seconds=3)]
    for i, created_at in enumerate(times):
        verdicts = ("REFUTED",) if i % 2 else ("SUPPORTED", "NOT_ENOUGH_INFO")
        topic = "Unemployment" if i < 3 else "ÉTÉ inflation"
        store.save(make_trace(f"t{i}", created_at=created_at, verdicts=verdicts, topic=topic))

    assert ids(store) == ["t5", "t4", "t3", "t2", "t1", "t0"]
    assert ids(store, verdict="REFUTED") == ["t5", "t3", "t1"]
    assert ids(store, verdict="NOT_ENOUGH_INFO") == ["t4", "t2", "t0"]
    # Postgres' LIKE is case-sensitive: these match only because the store casefolds both sides.
    assert ids(store, text="UNEMPLOYMENT rate") == ["t2", "t1", "t0"]
    assert ids(store, text="été") == ["t5", "t4", "t3"]
    assert ids(store, text="été", verdict="REFUTED") == ["t5", "t3"]
    assert ids(store, since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=3)) == ["t4", "t3", "t2"]

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = store.list(TraceQuery(limit=2, cursor=cursor))
        assert 0 < len(page.items) <= 2
        seen += [item.trace_id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["t5", "t4", "t3", "t2", "t1", "t0"]

    first = store.list(TraceQuery(limit=2, verdict="SUPPORTED"))
    assert first.next_cursor is not None
    second = store.list(TraceQuery(limit=2, verdict="SUPPORTED", cursor=first.next_cursor))
    assert [item.trace_id for item in first.items + second.items] == ["t4", "t2", "t0"]
    assert second.next_cursor is None


def test_owner_scoping_hides_other_owners_traces(store: SqlTraceStore) -> None:
    store.save(make_trace("alice1", owner="alice"))
    store.save(make_trace("bob1", owner="bob", created_at=T0 + timedelta(seconds=1)))
    store.save(make_trace("anon", created_at=T0 + timedelta(seconds=2)))

    assert store.get("alice1", owner="bob", owner_scoped=True) is None
    assert store.get("alice1", owner="alice", owner_scoped=True) is not None
    assert store.get("anon", owner=None, owner_scoped=True) is not None
    assert store.get("anon", owner="alice", owner_scoped=True) is None
    assert ids(store, owner="alice", owner_scoped=True) == ["alice1"]
    assert ids(store, owner=None, owner_scoped=True) == ["anon"]
    assert ids(store, owner="alice") == ["anon", "bob1", "alice1"]
    assert store.delete("alice1", owner="bob", owner_scoped=True) is False
    assert store.delete("alice1", owner="alice", owner_scoped=True) is True
    assert ids(store) == ["anon", "bob1"]


def test_saving_the_same_id_again_replaces_the_trace(store: SqlTraceStore) -> None:
    store.save(make_trace("t1", verdicts=["SUPPORTED"]))
    replacement = make_trace("t1", verdicts=["REFUTED", "REFUTED"], status="partial", topic="inflation")
    store.save(replacement)
    assert store.get("t1") == replacement
    page = store.list(TraceQuery())
    assert [item.trace_id for item in page.items] == ["t1"]
    assert page.items[0].summary.refuted == 2 and page.items[0].status == "partial"
    assert ids(store, verdict="SUPPORTED") == []
    assert ids(store, text="unemployment") == []


def test_two_replicas_on_one_database_see_each_others_traces(
    replicas: tuple[SqlTraceStore, SqlTraceStore],
) -> None:
    first, second = replicas
    from_first = make_trace("from-first", verdicts=["SUPPORTED"], owner="alice")
    from_second = make_trace(
        "from-second", verdicts=["SUPPORTED"], owner="alice", created_at=T0 + timedelta(seconds=1)
    )
    first.save(from_first)
    second.save(from_second)
    for replica in replicas:
        assert replica.get("from-first") == from_first
        assert replica.get("from-second") == from_second
        assert ids(replica, owner="alice", owner_scoped=True) == ["from-second", "from-first"]
    # A cursor handed out by one replica pages on the other: the load balancer may switch between them.
    page = first.list(TraceQuery(limit=1))
    assert [item.trace_id for item in page.items] == ["from-second"]
    assert page.next_cursor is not None
    rest = second.list(TraceQuery(limit=1, cursor=page.next_cursor))
    assert [item.trace_id for item in rest.items] == ["from-first"]
    # The second replica overwrites and then deletes what the first one saved.
    second.save(make_trace("from-first", verdicts=["REFUTED"], owner="alice"))
    assert ids(first, verdict="REFUTED") == ["from-first"]
    assert second.delete("from-first") is True
    assert first.get("from-first") is None


def test_concurrent_saves_from_threads_in_both_replicas_all_land(
    replicas: tuple[SqlTraceStore, SqlTraceStore],
) -> None:
    def save_batch(worker: int) -> None:
        replica = replicas[worker % 2]
        for i in range(5):
            replica.save(
                make_trace(f"w{worker}-{i}", created_at=T0 + timedelta(seconds=i), owner=f"k{worker}")
            )
            # Every worker also saves one shared id: the native upsert keeps both replicas from colliding.
            replica.save(make_trace("shared", created_at=T0, owner=f"k{worker}"))
            replica.list(TraceQuery(limit=5))

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(save_batch, worker) for worker in range(8)]:
            future.result()
    for replica in replicas:
        saved = ids(replica)
        assert len(saved) == 41 and len(set(saved)) == 41
        assert replica.get("w7-4") == make_trace("w7-4", created_at=T0 + timedelta(seconds=4), owner="k7")
        shared = replica.get("shared")
        assert shared is not None and shared.header.owner in {f"k{worker}" for worker in range(8)}
