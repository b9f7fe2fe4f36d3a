"""``verifact verify`` on the pipeline fakes, and the help of the service commands."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import graph.services
from api.cli import configure_logging, main
from graph.services import LoadedServices
from graph.tracestore import TraceQuery
from tests.api.helpers import CLAIM_0, CLAIM_2, one_error_line, run_cli
from tests.pipeline_fakes import TEXT, OverlapSearcher, fake_context

REFUTED_TEXT = "Unemployment never fell to 3.5 percent in 2019."


class _Closer:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_services(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`verifact verify` loads the fakes; the dict tells what was loaded and whether it was closed."""
    seen: dict[str, Any] = {"searcher": OverlapSearcher(), "closer": _Closer(), "configs": []}

    def load(config: Any) -> LoadedServices:
        seen["configs"].append(config)
        context = fake_context(store_path, searcher=seen["searcher"])
        seen["store"] = context.trace_store
        return LoadedServices(context, [seen["closer"]])

    monkeypatch.setattr(graph.services, "load_services", load)
    return seen


def test_verify_prints_a_table_of_verdicts_and_closes_what_it_loaded(
    capsys: pytest.CaptureFixture[str], fake_services: dict[str, Any]
) -> None:
    code, out, err = run_cli(capsys, "verify", TEXT, "--index-dir", "/somewhere/index")

    assert code == 0 and err == ""
    assert out.count("SUPPORTED") == 2
    assert CLAIM_0 in out and CLAIM_2 in out and "cites: d1" in out and "cites: d2" in out
    assert "4 sentences, 2 check-worthy, 2 checked: 2 supported, 0 refuted, 0 not enough info" in out
    stored = fake_services["store"].list(TraceQuery())
    assert [t.trace_id for t in stored.items] == [out.split("trace ")[-1].split()[0]]
    assert fake_services["closer"].closed is True
    assert fake_services["configs"][0].index_dir == "/somewhere/index"


def test_verify_json_is_the_api_result_and_options_reach_the_pipeline(
    capsys: pytest.CaptureFixture[str], fake_services: dict[str, Any]
) -> None:
    code, out, _ = run_cli(capsys, "verify", TEXT, "--json", "--top-k", "2", "--max-claims", "1", "--trace")
    result = json.loads(out)

    assert code == 0
    assert [c["text"] for c in result["claims"]] == [CLAIM_0]
    assert len(result["claims"][0]["evidence"]) == 2
    assert result["trace"]["header"]["trace_id"] == result["trace_id"]
    assert fake_services["searcher"].queries == [(CLAIM_0, 2)]


def test_verify_shows_claim_errors_and_the_partial_status(
    capsys: pytest.CaptureFixture[str], fake_services: dict[str, Any]
) -> None:
    fake_services["searcher"].fail = ConnectionError("index down")
    code, out, _ = run_cli(capsys, "verify", TEXT)

    assert code == 0
    assert out.count("NOT ENOUGH INFO") == 2
    assert out.count("error: ConnectionError: index down") == 2
    assert "2 with errors" in out and "status partial" in out


def test_verify_with_no_claim_says_so(
    capsys: pytest.CaptureFixture[str], fake_services: dict[str, Any]
) -> None:
    code, out, _ = run_cli(capsys, "verify", "Thank you all. What a crowd!")

    assert code == 0
    assert out.startswith("no check-worthy claim among 2 sentence(s) (threshold 0.50)")


def test_verify_reads_the_text_from_stdin_or_a_file(
    capsys: pytest.CaptureFixture[str],
    fake_services: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(TEXT))
    code, out, _ = run_cli(capsys, "verify", "-", "--json")
    assert code == 0 and json.loads(out)["summary"]["supported"] == 2

    path = tmp_path / "speech.txt"
    path.write_text(REFUTED_TEXT, encoding="utf-8")
    code, out, _ = run_cli(capsys, "verify", "--file", str(path), "--json")
    assert code == 0 and [c["verdict"] for c in json.loads(out)["claims"]] == ["REFUTED"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["verify", "   "], None, "the text is empty"),
        (["verify", "-"], io.StringIO("\n\n"), "the text is empty"),
        (["verify"], _Terminal(""), "no text given"),
        (["verify", "--file", "/no/such/file.txt"], None, "cannot read /no/such/file.txt"),
        (["verify", TEXT, "--judge", "llm"], None, "no LLM endpoint is configured"),
    ],
)
def test_verify_user_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    fake_services: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: io.StringIO | None,
    message: str,
) -> None:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", stdin)
    code, out, err = run_cli(capsys, *argv)

    assert code == 2 and out == ""
    assert message in one_error_line(err)


def test_verify_refuses_a_text_over_the_limit(
    capsys: pytest.CaptureFixture[str], fake_services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIFACT_MAX_TEXT_CHARS", "20")
    code, _, err = run_cli(capsys, "verify", TEXT)

    assert code == 2 and "the limit is 20" in one_error_line(err)
    assert fake_services["configs"] == []  # refused before loading anything


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"VERIFACT_SEARCH_MODE": "fuzzy", "VERIFACT_PORT": "abc"},
            "bad settings: VERIFACT_PORT: Input should be a valid integer, unable to parse string as an "
            "integer (got 'abc'); VERIFACT_SEARCH_MODE: Input should be 'hybrid', 'dense' or 'bm25' "
            "(got 'fuzzy')",
        ),
        (
            {"VERIFACT_DENSE_WEIGHT": "0", "VERIFACT_LEXICAL_WEIGHT": "0"},
            "bad settings: VERIFACT_DENSE_WEIGHT and VERIFACT_LEXICAL_WEIGHT cannot both be 0",
        ),
        ({"VERIFACT_RRF_K": "0"}, "VERIFACT_RRF_K: Input should be greater than or equal to 1 (got '0')"),
        ({"VERIFACT_FUSION": "max"}, "VERIFACT_FUSION: Input should be 'rrf' or 'convex' (got 'max')"),
        (
            {"VERIFACT_MODEL_THREADS": "-1"},
            "VERIFACT_MODEL_THREADS: Input should be greater than or equal to 0 (got '-1')",
        ),
    ],
)
@pytest.mark.parametrize("command", [["verify", TEXT], ["serve"]])
def test_bad_settings_are_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
    fake_services: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
    command: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(capsys, *command)

    assert code == 2 and message in one_error_line(err)
    assert fake_services["configs"] == []  # refused before loading anything


def test_a_bad_setting_with_a_key_in_its_name_is_not_echoed() -> None:
    from pydantic import ValidationError

    from api.config import Settings, settings_error_message

    with pytest.raises(ValidationError) as info:
        Settings(max_concurrent_per_key="secret-looking-value")  # type: ignore[arg-type]
    text = settings_error_message(info.value)
    assert "VERIFACT_MAX_CONCURRENT_PER_KEY" in text and "secret-looking-value" not in text


def _pipeline_config_under(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Any:
    from api.config import Settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings().pipeline()


def test_search_settings_reach_the_pipeline_config(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "VERIFACT_SEARCH_MODE": "bm25",
        "VERIFACT_FUSION": "convex",
        "VERIFACT_DENSE_WEIGHT": "0.5",
        "VERIFACT_LEXICAL_WEIGHT": "2",
        "VERIFACT_RRF_K": "40",
    }
    config = _pipeline_config_under(monkeypatch, env)
    assert config.search() == {
        "mode": "bm25",
        "fusion": "convex",
        "dense_weight": 0.5,
        "lexical_weight": 2.0,
        "rrf_k": 40,
    }


def test_model_run_settings_reach_the_pipeline_config(monkeypatch: pytest.MonkeyPatch) -> None:
    default = _pipeline_config_under(monkeypatch, {})
    knobs = ("model_threads", "model_parallel", "batch_tokens", "blocking_threads")
    assert tuple(getattr(default, k) for k in knobs) == (1, 0, 256, 64)
    env = {
        "VERIFACT_MODEL_THREADS": "0",
        "VERIFACT_MODEL_PARALLEL": "3",
        "VERIFACT_BATCH_TOKENS": "1024",
        "VERIFACT_BLOCKING_THREADS": "8",
    }
    config = _pipeline_config_under(monkeypatch, env)
    assert tuple(getattr(config, k) for k in knobs) == (0, 3, 1024, 8)


def test_verify_with_a_bad_option_names_it(
    capsys: pytest.CaptureFixture[str], fake_services: dict[str, Any]
) -> None:
    code, _, err = run_cli(capsys, "verify", TEXT, "--top-k", "0")

    line = one_error_line(err)
    assert code == 2
    assert "--top-k" in line and "greater than or equal to 1" in line


@pytest.mark.parametrize("command", ["serve", "prepare", "verify", "traces"])
def test_service_command_help_exits_0(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: verifact {command}")


@pytest.mark.parametrize(("verbose", "logged"), [(False, False), (True, True)])
def test_serve_does_not_log_each_llm_http_call_unless_verbose(verbose: bool, logged: bool) -> None:
    # Under load a line per LLM call floods the log (and once filled a benchmark's stderr pipe).
    loggers = [logging.getLogger(name) for name in ("httpx", "httpx2")]
    levels = [log.level for log in loggers]
    root = logging.getLogger()
    root_level = root.level
    try:
        root.setLevel(logging.INFO)
        configure_logging(verbose=verbose, command="serve")
        assert all(log.isEnabledFor(logging.INFO) is logged for log in loggers)
        assert all(log.isEnabledFor(logging.WARNING) for log in loggers)
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
        root.setLevel(root_level)
