"""The ``verifact index`` commands, run in-process with a hash encoder in place of a real model."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import retrieval.build
from api.cli import main
from tests.fakes import HashEncoder


def named_encoder(name: str) -> HashEncoder:
    """A hash encoder with one fingerprint per name, as real weights would give."""
    return HashEncoder(dim=64, name=name, fingerprint=hashlib.sha1(name.encode()).hexdigest()[:16])


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[HashEncoder]:
    """Every encoder the CLI loads, in order; the fake replaces ``retrieval.build.load_encoder``."""
    encoders: list[HashEncoder] = []

    def fake_load(name: str, backend: str, cache_dir: str | None) -> HashEncoder:
        # One fingerprint per name, as real weights would give.
        encoders.append(
            HashEncoder(dim=64, name=name, fingerprint=hashlib.sha1(name.encode()).hexdigest()[:16])
        )
        return encoders[-1]

    monkeypatch.setattr(retrieval.build, "load_encoder", fake_load)
    return encoders


def record(pid: str, title: str, text: str, topic: str) -> dict[str, str]:
    """A JSONL record; ``topic`` is not a known field, so it lands in the metadata."""
    return {"id": pid, "title": title, "text": text, "topic": topic}


RECORDS = [
    record("ice-1", "Arctic sea ice", "Arctic sea ice reached a record low in 2012.", "ice"),
    record("ice-2", "Glaciers", "Alpine glaciers have lost half their volume.", "ice"),
    record("vax-1", "Vaccines", "Measles vaccines do not cause autism.", "health"),
    record("moon-1", "Moon", "Apollo astronauts walked on the Moon in 1969.", "space"),
    record("ice-1", "Arctic sea ice", "Arctic sea ice reached a record low in 2012.", "ice"),  # a repeat
]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A JSONL file (one record repeated) and a folder of two Markdown files."""
    jsonl = tmp_path / "facts.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "coffee.md").write_text("Moderate coffee drinking is linked to lower liver disease risk.\n")
    (notes / "lightning.md").write_text("Lightning often strikes the same tall tower many times.\n")
    return jsonl, notes


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``verifact ARGV`` in-process: exit status, stdout, stderr."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def built(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    loaded: list[HashEncoder],
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """An index built from both inputs through ``verifact index build``."""
    out = tmp_path / "index"
    code, _, err = run(
        ["index", "build", *map(str, inputs), "--out", str(out), "--encoder", "hash-a"], capsys
    )
    assert code == 0, err
    return out


def test_a_reader_that_goes_away_ends_the_command_quietly(built: Path) -> None:
    """`verifact index info | head -1`: the pipe closes before the output is written."""
    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-m", "api.cli", "index", "info", "--index", str(built)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def info(index: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The parsed output of ``verifact index info``."""
    code, out, _ = run(["index", "info", "--index", str(index)], capsys)
    assert code == 0
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def search_json(index: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    """The hits of ``verifact index search ... --json``."""
    code, out, err = run(["index", "search", *args, "--index", str(index), "--json"], capsys)
    assert code == 0, err
    hits: list[dict[str, Any]] = json.loads(out)
    return hits


def test_build_prints_a_summary_and_encodes_with_a_progress_bar(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    loaded: list[HashEncoder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "index"
    code, stdout, _ = run(
        ["index", "build", *map(str, inputs), "--out", str(out), "--encoder", "hash-a"], capsys
    )
    assert code == 0
    summary = dict(line.split(None, 1) for line in stdout.splitlines())
    assert summary["passages"].startswith("6 from 3 file(s)")
    assert summary["duplicates"] == "1 skipped"
    assert summary["type"].startswith("flat")
    assert summary["encoder"].startswith("hash-a")
    assert summary["speed"].endswith("passages/s")
    assert [e.name for e in loaded] == ["hash-a"] and loaded[0].progress == [True]
    assert (out / "manifest.json").is_file()


def test_build_switches_to_hnsw_at_the_threshold(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    loaded: list[HashEncoder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "index"
    argv = ["index", "build", str(inputs[0]), "--out", str(out), "--hnsw-threshold", "2", "--no-title"]
    assert run(argv, capsys)[0] == 0
    manifest = info(out, capsys)
    assert manifest["index_type"] == "hnsw"
    assert manifest["config"]["hnsw_threshold"] == 2 and manifest["config"]["embed_title"] is False


def test_build_takes_bm25_settings_and_refuses_out_of_range_ones(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    loaded: list[HashEncoder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "index"
    argv = ["index", "build", str(inputs[0]), "--out", str(out), "--bm25-k1", "1.5", "--bm25-b", "0.6"]
    assert run(argv, capsys)[0] == 0
    lexical = info(out, capsys)["lexical"]
    assert (lexical["k1"], lexical["b"]) == (1.5, 0.6)
    code, _, err = run([*argv[:4], str(tmp_path / "other"), "--bm25-b", "2"], capsys)
    assert code == 2 and "bad index setting: bm25_b must be between 0 and 1, got 2.0" in err
    assert len(loaded) == 1  # refused before any encoder was loaded


def test_build_help_states_the_index_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from retrieval.index import IndexConfig

    with pytest.raises(SystemExit):
        main(["index", "build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = IndexConfig()
    assert f"(default: {defaults.bm25_k1})" in text and f"(default: {defaults.bm25_b})" in text
    assert f"(default: {defaults.hnsw_threshold})" in text


def test_info_prints_the_manifest_and_size_without_loading_an_encoder(
    built: Path, loaded: list[HashEncoder], capsys: pytest.CaptureFixture[str]
) -> None:
    loaded.clear()
    manifest = info(built, capsys)
    assert loaded == []
    assert manifest["count"] == 6 and manifest["index_type"] == "flat"
    assert manifest["encoder"] == {
        "name": "hash-a",
        "fingerprint": named_encoder("hash-a").fingerprint,
        "dim": 64,
        "backend": "hash",
    }
    on_disk = manifest["on_disk"]
    assert isinstance(on_disk, dict) and on_disk["bytes"] > 0 and on_disk["path"] == str(built.resolve())


def test_search_prints_a_table(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["index", "search", "arctic sea ice record", "--index", str(built), "--k", "3"], capsys
    )
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["rank", "id", "score", "dense", "lexical", "title", "text"]
    assert len(rows) == 3
    assert rows[0].split()[:2] == ["1", "ice-1"] and "Arctic sea ice reached" in rows[0]


def test_search_json_with_modes_and_filters(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hits = search_json(built, capsys, "arctic sea ice record", "--k", "2")
    assert [h["rank"] for h in hits] == [1, 2] and hits[0]["id"] == "ice-1"
    assert hits[0]["dense_score"] is not None and hits[0]["lexical_score"] is not None
    bm25 = search_json(built, capsys, "glaciers", "--mode", "bm25")
    assert [h["id"] for h in bm25] == ["ice-2"] and bm25[0]["dense_score"] is None
    only_ice = search_json(built, capsys, "arctic sea ice", "--filter", "topic=ice", "--k", "10")
    assert {h["id"] for h in only_ice} == {"ice-1", "ice-2"}
    either = search_json(
        built, capsys, "moon", "--filter", "topic=space", "--filter", "topic=health", "--k", "10"
    )
    assert {h["id"] for h in either} == {"moon-1", "vax-1"}
    notes = search_json(built, capsys, "tower", "--mode", "dense", "--filter", "source=lightning.md")
    assert [h["title"] for h in notes] == ["lightning"]
    first_chunks = search_json(built, capsys, "coffee", "--filter", "chunk=0", "--k", "10")
    assert {h["title"] for h in first_chunks} == {"coffee", "lightning"}
    convex = search_json(
        built, capsys, "arctic sea ice record", "--fusion", "convex", "--dense-weight", "1.5"
    )
    assert convex[0]["id"] == "ice-1"
    assert [h["score"] for h in convex] == sorted((h["score"] for h in convex), reverse=True)
    assert convex[0]["score"] != hits[0]["score"], "z-scored sums, not reciprocal ranks"


def test_add_reports_added_and_duplicates(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    more = tmp_path / "more.jsonl"
    more.write_text(
        json.dumps({"id": "mars-1", "text": "The Perseverance rover drilled rock cores on Mars."})
        + "\n"
        + json.dumps(RECORDS[2])
        + "\n"
    )
    code, out, _ = run(["index", "add", str(more), "--index", str(built)], capsys)
    assert code == 0
    summary = dict(line.split(None, 1) for line in out.splitlines())
    assert summary["added"].startswith("1 passage(s); the index now holds 7")
    assert summary["duplicates"] == "1 skipped" and "passages/s" in summary["speed"]
    assert search_json(built, capsys, "perseverance rover mars", "--k", "1")[0]["id"] == "mars-1"
    assert info(built, capsys)["count"] == 7


def test_delete_counts_and_names_missing_ids(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("vax-1\n\nnope-2\n")
    argv = ["index", "delete", "ice-1", "nope-1", "ice-1", "--ids-file", str(ids_file), "--index", str(built)]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert out.splitlines() == [
        "deleted 2 of 4 id(s); the index now holds 4",
        "not found (2): nope-1, nope-2",
    ]
    assert info(built, capsys)["count"] == 4
    assert "ice-1" not in {h["id"] for h in search_json(built, capsys, "arctic sea ice", "--k", "10")}


def test_rebuild_with_another_encoder(
    built: Path, loaded: list[HashEncoder], capsys: pytest.CaptureFixture[str]
) -> None:
    before = info(built, capsys)
    loaded.clear()
    code, out, _ = run(["index", "rebuild", "--index", str(built), "--encoder", "hash-b"], capsys)
    assert code == 0 and "hash-a -> hash-b" in out
    assert [e.name for e in loaded] == ["hash-b"], "the old encoder is never loaded"
    after = info(built, capsys)
    assert after["count"] == before["count"] == 6
    assert after["content_hash"] == before["content_hash"]
    assert after["encoder"]["fingerprint"] == named_encoder("hash-b").fingerprint
    assert search_json(built, capsys, "apollo moon", "--k", "1")[0]["id"] == "moon-1"


def test_rebuild_lexical_only_changes_bm25_and_keeps_the_vectors(
    built: Path, loaded: list[HashEncoder], capsys: pytest.CaptureFixture[str]
) -> None:
    before = info(built, capsys)
    vectors = (built / "vectors.faiss").read_bytes()
    loaded.clear()
    argv = [
        "index",
        "rebuild",
        "--index",
        str(built),
        "--lexical-only",
        "--bm25-k1",
        "1.5",
        "--bm25-b",
        "0.2",
    ]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "k1 0.9 -> 1.5, b 0.4 -> 0.2" in out and "6 (vectors kept)" in out
    assert [e.name for e in loaded] == ["hash-a"], "opened with the index's own encoder, nothing else"
    after = info(built, capsys)
    assert (after["lexical"]["k1"], after["lexical"]["b"]) == (1.5, 0.2)
    assert (after["config"]["bm25_k1"], after["config"]["bm25_b"]) == (1.5, 0.2)
    assert after["built_at"] == before["built_at"] and after["content_hash"] == before["content_hash"]
    assert (built / "vectors.faiss").read_bytes() == vectors
    assert search_json(built, capsys, "apollo moon", "--k", "1", "--mode", "bm25")[0]["id"] == "moon-1"


def test_rebuild_with_a_new_encoder_can_set_bm25_too(
    built: Path, loaded: list[HashEncoder], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        ["index", "rebuild", "--index", str(built), "--encoder", "hash-b", "--bm25-b", "0.3"], capsys
    )
    assert code == 0 and "k1 0.9, b 0.3" in out
    after = info(built, capsys)
    assert (after["lexical"]["k1"], after["lexical"]["b"]) == (0.9, 0.3)
    assert after["encoder"]["name"] == "hash-b"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--lexical-only", "--encoder", "hash-b"],
            "--lexical-only keeps the vectors; it takes no --encoder",
        ),
        (["--bm25-b", "5"], "bad index setting: bm25_b must be between 0 and 1, got 5.0"),
        (["--lexical-only", "--bm25-k1", "-1"], "bad index setting: bm25_k1 must be non-negative, got -1.0"),
    ],
)
def test_rebuild_refuses_bad_settings_before_loading_anything(
    extra: list[str], message: str, built: Path, loaded: list[HashEncoder], capsys: pytest.CaptureFixture[str]
) -> None:
    loaded.clear()
    code, _, err = run(["index", "rebuild", "--index", str(built), *extra], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert loaded == []


def test_index_dir_defaults_to_the_environment(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    loaded: list[HashEncoder],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VERIFACT_INDEX_DIR", str(tmp_path / "from-env"))
    assert run(["index", "build", str(inputs[0])], capsys)[0] == 0
    code, out, _ = run(["index", "info"], capsys)
    assert code == 0 and json.loads(out)["on_disk"]["path"] == str((tmp_path / "from-env").resolve())


def test_build_refuses_to_overwrite_without_force(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps(RECORDS[3]) + "\n")
    code, _, err = run(["index", "build", str(small), "--out", str(built)], capsys)
    assert code == 2 and "already exists; pass --force" in err
    assert info(built, capsys)["count"] == 6
    assert run(["index", "build", str(small), "--out", str(built), "--force"], capsys)[0] == 0
    assert info(built, capsys)["count"] == 1
    assert sorted(p.name for p in built.parent.iterdir() if p.name.startswith(".")) == []


def test_build_never_replaces_a_folder_that_is_not_an_index(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    loaded: list[HashEncoder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(["index", "build", str(inputs[0]), "--out", str(inputs[1]), "--force"], capsys)
    assert code == 2 and "holds no index" in err
    assert (inputs[1] / "coffee.md").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["index", "build", "{tmp}/missing.jsonl", "--out", "{tmp}/new"], "missing.jsonl: no such file"),
        (["index", "add", "{inputs}", "--index", "{tmp}/nowhere"], "nowhere: no such index directory"),
        (["index", "search", "ice", "--index", "{tmp}/nowhere"], "nowhere: no such index directory"),
        (["index", "info", "--index", "{tmp}/nowhere"], "nowhere: no such index directory"),
        (["index", "search", "ice", "--index", "{index}", "--filter", "topic"], "--filter expects KEY=VALUE"),
        (["index", "search", "ice", "--index", "{index}", "--k", "0"], "--k must be between 1 and 1000"),
        (["index", "search", "ice", "--index", "{index}", "--k", "1001"], "--k must be between 1 and 1000"),
        (["index", "delete", "--index", "{index}"], "no ids given"),
        (["index", "search", "ice", "--index", "{index}", "--dense-weight", "-1"], "must be non-negative"),
        (["index", "build", "{inputs}", "--out", "{tmp}/new", "--chunk-overlap", "900"], "chunk_overlap"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    argv: list[str],
    message: str,
    built: Path,
    tmp_path: Path,
    inputs: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [a.format(tmp=tmp_path, index=built, inputs=inputs[0]) for a in argv]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("verifact: error: ")


def test_help_loads_no_heavy_library() -> None:
    code = (
        "import sys; from api.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('numpy', 'faiss', 'torch', 'bm25s') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["index", "tune", "--out", "{tmp}/enc", "--sources", "wikipedia"], "unknown --sources wikipedia"),
        (["index", "tune", "--out", "{tmp}/enc", "--sources", "", "--no-reindex"], "no training pairs"),
        (["index", "tune", "--out", "{tmp}", "--sources", ""], "already exists; choose another --out"),
    ],
)
def test_tune_commands_refuse_bad_requests_in_one_line(
    argv: list[str], message: str, built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_tune_trains_from_a_pairs_file_and_reindexes(
    built: Path, loaded: list[HashEncoder], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from tests.conftest import build_tiny_bert

    bert = build_tiny_bert(tmp_path / "bert")
    base = tmp_path / "base"
    SentenceTransformer(
        modules=[Transformer(str(bert)), Pooling(32, "mean"), Normalize()], device="cpu"
    ).save(str(base))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"query": f"tax {n}", "positive": f"jobs {n}"}) for n in range(8)))
    argv = ["index", "tune", "--index", str(built), "--out", str(tmp_path / "enc"), "--base", str(base)]
    extra = ["--epochs", "2", "--average-last-epochs", "2"]
    code, out, err = run([*argv, "--sources", "", "--pairs", str(pairs), *extra], capsys)
    assert code == 0, err
    assert "8 (0 with a hard negative)" in out and "re-indexed" in out
    assert "the mean of the last 2 epochs' ends" in out
    assert json.loads((tmp_path / "enc" / "verifact_tune.json").read_text())["averaged_epochs"] == 2
    assert loaded[-1].name == str(tmp_path / "enc")
    assert info(built, capsys)["encoder"]["name"] == str(tmp_path / "enc")
