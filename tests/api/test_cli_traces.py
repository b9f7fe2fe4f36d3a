"""``verifact traces list/show/delete`` against a trace store filled by the pipeline on fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.pipeline import Pipeline, PipelineError
from tests.api.helpers import CLAIM_0, CLAIM_2, one_error_line, run_cli
from tests.pipeline_fakes import TEXT, KeywordScorer, fake_context

REFUTED_TEXT = "Unemployment never fell to 3.5 percent in 2019."


@pytest.fixture
def filled_store(store_path: Path) -> tuple[Path, list[str]]:
    """A trace store with two runs (oldest first): TEXT (two SUPPORTED) and one REFUTED claim."""
    context = fake_context(store_path)
    try:
        pipeline = Pipeline(context)
        ids = [pipeline.verify(TEXT).trace_id, pipeline.verify(REFUTED_TEXT).trace_id]
    finally:
        assert context.trace_store is not None
        context.trace_store.close()
    return store_path, ids


def test_traces_list_shows_the_runs_newest_first(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]]
) -> None:
    db, (first, second) = filled_store
    code, out, _ = run_cli(capsys, "traces", "list", "--trace-db", str(db))

    assert code == 0
    rows = out.strip().splitlines()
    assert rows[0].startswith("trace id")
    assert rows[1].startswith(second) and rows[2].startswith(first)
    assert "0/1/0" in rows[1] and "2/0/0" in rows[2]


def test_traces_list_json_is_a_page_that_filters_and_pages(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]]
) -> None:
    db, (first, second) = filled_store
    code, out, _ = run_cli(capsys, "traces", "list", "--trace-db", str(db), "--json", "--limit", "1")
    page = json.loads(out)
    assert code == 0
    assert [i["trace_id"] for i in page["items"]] == [second] and page["next_cursor"]

    _, out, _ = run_cli(
        capsys, "traces", "list", "--trace-db", str(db), "--json", "--cursor", page["next_cursor"]
    )
    assert [i["trace_id"] for i in json.loads(out)["items"]] == [first]
    _, out, _ = run_cli(capsys, "traces", "list", "--trace-db", str(db), "--json", "--verdict", "REFUTED")
    assert [i["trace_id"] for i in json.loads(out)["items"]] == [second]
    _, out, _ = run_cli(capsys, "traces", "list", "--trace-db", str(db), "--q", "global TEMPERATURES")
    assert first in out and second not in out


def test_traces_show_prints_the_path_claims_and_timeline(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]]
) -> None:
    db, (first, _) = filled_store
    code, out, _ = run_cli(capsys, "traces", "show", first, "--trace-db", str(db))

    assert code == 0
    assert out.startswith(f"trace {first} ")
    assert "path: split -> detect -> retrieve -> judge -> report" in out
    assert f"[c0] SUPPORTED 1.00  {CLAIM_0}" in out and f"[c2] SUPPORTED 1.00  {CLAIM_2}" in out
    timeline = out.split("timeline:\n")[1].splitlines()
    assert [line.split()[0] for line in timeline] == [
        "split",
        "detect",
        "retrieve",
        "retrieve",
        "judge",
        "judge",
        "report",
    ]

    code, out, _ = run_cli(capsys, "traces", "show", first, "--trace-db", str(db), "--json")
    trace = json.loads(out)
    assert code == 0 and trace["header"]["trace_id"] == first and trace["text"] == TEXT


def test_traces_show_gives_the_reason_of_a_failed_run(
    capsys: pytest.CaptureFixture[str], store_path: Path
) -> None:
    scorer = KeywordScorer()
    scorer.fail = RuntimeError("classifier down")
    context = fake_context(store_path, scorer=scorer)
    with pytest.raises(PipelineError) as failure:
        Pipeline(context).verify(TEXT)
    assert context.trace_store is not None
    context.trace_store.close()

    code, out, _ = run_cli(capsys, "traces", "show", failure.value.trace_id, "--trace-db", str(store_path))

    assert code == 0
    assert f"trace {failure.value.trace_id} · " in out and " · error · " in out
    assert "reason: RuntimeError: classifier down" in out
    assert "path: split" in out


def test_traces_delete_removes_a_trace_and_unknown_ids_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]]
) -> None:
    db, (first, second) = filled_store
    code, out, _ = run_cli(capsys, "traces", "delete", first, "--trace-db", str(db))
    assert code == 0 and out.strip() == f"deleted {first}"

    for command in ("show", "delete"):
        code, out, err = run_cli(capsys, "traces", command, first, "--trace-db", str(db))
        assert code == 2 and out == ""
        assert one_error_line(err) == f"verifact: error: no trace {first}"
    _, out, _ = run_cli(capsys, "traces", "list", "--trace-db", str(db), "--json")
    assert [i["trace_id"] for i in json.loads(out)["items"]] == [second]


def test_traces_list_with_a_malformed_cursor_exits_2(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]]
) -> None:
    db, _ = filled_store
    code, _, err = run_cli(capsys, "traces", "list", "--trace-db", str(db), "--cursor", "garbage")

    assert code == 2 and "malformed trace cursor" in one_error_line(err)


@pytest.mark.parametrize("limit", ["0", "500"])
def test_traces_list_with_a_limit_out_of_range_exits_2(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]], limit: str
) -> None:
    db, _ = filled_store
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "traces", "list", "--trace-db", str(db), "--limit", limit)
    err = capsys.readouterr().err

    assert info.value.code == 2
    assert f"--limit: must be between 1 and 200, got {limit}" in err and "Traceback" not in err


def test_traces_list_filters_by_time_window(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]]
) -> None:
    db, (first, second) = filled_store
    base = ["traces", "list", "--trace-db", str(db), "--json"]

    def listed(*extra: str) -> list[str]:
        code, out, _ = run_cli(capsys, *base, *extra)
        assert code == 0
        return [i["trace_id"] for i in json.loads(out)["items"]]

    items = json.loads(run_cli(capsys, *base)[1])["items"]
    created = {t["trace_id"]: t["created_at"] for t in items}
    assert created[first] < created[second]
    assert listed("--since", created[second]) == [second]
    assert listed("--until", created[second]) == [first]
    # A bare date is midnight UTC.
    assert listed("--since", "2000-01-01") == [second, first] and listed("--until", "2000-01-01") == []


def test_traces_list_with_a_bad_time_exits_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], filled_store: tuple[Path, list[str]]
) -> None:
    db, _ = filled_store
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "traces", "list", "--trace-db", str(db), "--since", "last tuesday")
    err = capsys.readouterr().err

    assert info.value.code == 2
    assert "--since: not an ISO 8601 date or time: 'last tuesday'" in err and "Traceback" not in err
