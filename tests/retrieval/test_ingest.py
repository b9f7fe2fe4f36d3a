"""Ingestion: JSONL, CSV and text folders become passages; bad inputs fail with a clear IngestError."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from retrieval.errors import IngestError, RetrievalError
from retrieval.ingest import IngestOptions, IngestReport, collect, ingest
from retrieval.types import content_id

# Twelve short sentences, each about 50 characters, so chunk sizes of ~120 hold two of them.
SENTENCES = [f"Sentence number {i} is about the {w} topic here." for i, w in enumerate("abcdefghijkl")]


def _jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _text_folder(root: Path) -> Path:
    """A folder with a long .txt of two paragraphs, a nested .md, and a file ingestion must ignore."""
    root.mkdir()
    (root / "notes").mkdir()
    (root / "long.txt").write_text(
        " ".join(SENTENCES[:6]) + "\n\n" + " ".join(SENTENCES[6:]) + "\n", encoding="utf-8"
    )
    (root / "notes" / "birds.md").write_text(
        "# Birds\n\nBirds fly south. Geese fly in a V.\n", encoding="utf-8"
    )
    (root / "ignored.json").write_text('{"text": "not a text file"}', encoding="utf-8")
    return root


# -- JSONL ------------------------------------------------------------------------------------


def test_jsonl_reads_every_known_field_and_files_extra_keys_under_metadata(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "docs.jsonl",
        [
            {
                "id": "doc-1",
                "text": "  The Moon orbits the Earth.  ",
                "title": "Moon",
                "source": "wiki",
                "url": "https://example.org/moon",
                "metadata": {"lang": "en"},
                "year": 2020,
                "topic": "space",
                "empty": "",
            }
        ],
    )
    [p], report = collect([path])
    assert p.id == "doc-1"
    assert p.text == "The Moon orbits the Earth."
    assert (p.title, p.source, p.url) == ("Moon", "wiki", "https://example.org/moon")
    assert p.metadata == {"lang": "en", "year": 2020, "topic": "space"}
    assert report.to_dict() == {
        "files": 1,
        "records": 1,
        "passages": 1,
        "duplicates_skipped": 0,
        "per_file": {str(path): 1},
    }


def test_jsonl_without_id_gets_a_content_hash_and_the_file_name_as_source(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "plain.jsonl", [{"text": "Water boils at 100 C."}, {"text": "Ice melts at 0 C."}]
    )
    passages, _ = collect([path])
    assert [p.id for p in passages] == [content_id("Water boils at 100 C."), content_id("Ice melts at 0 C.")]
    assert passages[0].id != passages[1].id
    assert {p.source for p in passages} == {"plain.jsonl"}


def test_jsonl_skips_blank_lines_and_honours_custom_field_names(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    path.write_text(
        json.dumps({"doc_id": 7, "body": "Custom fields work.", "headline": "H"}) + "\n\n   \n",
        encoding="utf-8",
    )
    opts = IngestOptions(id_field="doc_id", text_field="body", title_field="headline")
    [p], report = collect([path], opts)
    assert (p.id, p.text, p.title, p.metadata) == ("7", "Custom fields work.", "H", {})
    assert report.records == 1


def test_exact_duplicates_are_skipped_and_counted(tmp_path: Path) -> None:
    a = _jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": "x", "text": "Same id and text."},
            {"id": "x", "text": "Same id and text."},
            {"text": "Same text, no id."},
            {"text": "Same text, no id."},
            {"id": "other-id", "text": "Same text, no id."},
        ],
    )
    b = _jsonl(tmp_path / "b.jsonl", [{"id": "x", "text": "Same id and text."}, {"text": "New in b."}])
    passages, report = collect([a, b])
    assert [p.text for p in passages] == ["Same id and text.", "Same text, no id.", "New in b."]
    assert (report.files, report.records, report.passages, report.duplicates) == (2, 7, 3, 4)
    assert report.per_file == {str(a): 2, str(b): 1}


def test_ingest_fills_a_report_passed_in_while_streaming(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [{"text": "One."}, {"text": "Two."}, {"text": "One."}])
    report = IngestReport()
    stream = ingest([path], report=report)
    assert next(stream).text == "One."
    assert [p.text for p in stream] == ["Two."]
    assert (report.passages, report.duplicates) == (2, 1)


# -- CSV --------------------------------------------------------------------------------------


def test_csv_reads_columns_and_files_unknown_ones_under_metadata(tmp_path: Path) -> None:
    path = tmp_path / "facts.csv"
    path.write_text(
        "id,text,title,source,url,year,topic\n"
        'f1,"Paris is the capital of France, not Lyon.",Paris,atlas,https://e.org/p,1999,geo\n'
        "f2,Rome is in Italy.,Rome,,,,\n",
        encoding="utf-8",
    )
    (f1, f2), report = collect([path])
    assert (f1.id, f1.text, f1.title, f1.source, f1.url) == (
        "f1",
        "Paris is the capital of France, not Lyon.",
        "Paris",
        "atlas",
        "https://e.org/p",
    )
    assert f1.metadata == {"year": "1999", "topic": "geo"}
    # Empty cells are absent rather than "", and a missing source falls back to the file name.
    assert (f2.source, f2.url, f2.metadata) == ("facts.csv", "", {})
    assert report.passages == 2


def test_csv_keeps_line_breaks_inside_a_quoted_cell(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('id,text\n1,"first line\nsecond line"\n2,plain\n', encoding="utf-8")
    passages, _ = collect([path])
    assert [p.text for p in passages] == ["first line\nsecond line", "plain"]


def test_csv_row_with_more_cells_than_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("text,year\nfine,2020\ntoo many,2021,surplus\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"ragged\.csv:3: more cells than the header"):
        collect([path])


# -- text folders -----------------------------------------------------------------------------


def test_folder_of_text_files_becomes_passages_with_relative_sources(tmp_path: Path) -> None:
    root = _text_folder(tmp_path / "corpus")
    passages, report = collect([root], IngestOptions(chunk_size=120, chunk_overlap=0))
    assert report.files == 2  # the .json file is not a text file
    assert {p.source for p in passages} == {"long.txt", str(Path("notes") / "birds.md")}
    birds = [p for p in passages if p.title == "birds"]
    assert [p.text for p in birds] == ["# Birds\n\nBirds fly south. Geese fly in a V."]
    for p in passages:
        assert p.id == content_id(p.text)
        assert p.metadata["path"] == p.source
    long = [p for p in passages if p.source == "long.txt"]
    assert [p.metadata["chunk"] for p in long] == list(range(len(long)))
    assert {p.title for p in long} == {"long"}


def test_text_is_split_at_sentence_ends_without_changing_the_words(tmp_path: Path) -> None:
    root = _text_folder(tmp_path / "corpus")
    source = (root / "long.txt").read_text(encoding="utf-8")
    passages, _ = collect([root / "long.txt"], IngestOptions(chunk_size=120, chunk_overlap=0))
    assert len(passages) == 6
    for p in passages:
        assert len(p.text) <= 120
        assert p.text.endswith("."), p.text
        assert p.text in source, "a passage must be a verbatim slice of its file"
    # Without overlap every sentence lands in exactly one passage.
    for sentence in SENTENCES:
        assert sum(sentence in p.text for p in passages) == 1


def test_chunk_overlap_repeats_the_boundary_sentence_in_the_next_passage(tmp_path: Path) -> None:
    root = _text_folder(tmp_path / "corpus")
    passages, _ = collect([root / "long.txt"], IngestOptions(chunk_size=120, chunk_overlap=60))
    texts = [p.text for p in passages]
    assert len(texts) > 6
    shared = [s for s in SENTENCES if any(s in a and s in b for a, b in itertools.pairwise(texts))]
    assert shared, "neighbouring passages should share a sentence when overlap is on"
    # A paragraph break is a hard boundary: no passage spans the two paragraphs.
    assert not any(SENTENCES[5] in t and SENTENCES[6] in t for t in texts)


def test_a_sentence_longer_than_the_chunk_falls_back_to_word_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "run-on.txt"
    words = [f"word{i}" for i in range(40)]
    path.write_text(" ".join(words), encoding="utf-8")
    passages, _ = collect([path], IngestOptions(chunk_size=50, chunk_overlap=0))
    assert len(passages) > 1
    assert all(len(p.text) <= 50 for p in passages)
    assert [w for p in passages for w in p.text.split()] == words
    assert {p.source for p in passages} == {"run-on.txt"}


def test_smaller_chunks_give_more_passages(tmp_path: Path) -> None:
    root = _text_folder(tmp_path / "corpus")
    big, _ = collect([root / "long.txt"], IngestOptions(chunk_size=400, chunk_overlap=0))
    small, _ = collect([root / "long.txt"], IngestOptions(chunk_size=60, chunk_overlap=0))
    assert len(small) > len(big)


# -- errors -----------------------------------------------------------------------------------


def _ingest_error(inputs: list[Path], opts: IngestOptions | None = None) -> str:
    with pytest.raises(IngestError) as info:
        collect(inputs, opts)
    return str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert _ingest_error([missing]) == f"{missing}: no such file or folder"


def test_non_utf8_file_says_where_and_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\u00e9 au lait is popular.".encode("latin-1"))
    message = _ingest_error([path])
    assert str(path) in message
    assert "not valid UTF-8" in message and "byte 3" in message


def test_utf8_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("text\nBOM files are common on Windows.\n".encode("utf-8-sig"))
    [p], _ = collect([path])
    assert p.text == "BOM files are common on Windows."


@pytest.mark.parametrize("record", [{"id": "a"}, {"id": "a", "text": "   "}, {"text": 42}])
def test_record_without_text_names_its_line(tmp_path: Path, record: dict[str, object]) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [{"text": "fine"}, record])
    assert _ingest_error([path]) == f"{path}:2: record has no text in field 'text'"


def test_id_reused_for_a_different_text_is_refused(tmp_path: Path) -> None:
    a = _jsonl(tmp_path / "a.jsonl", [{"id": "dup", "text": "The first text."}])
    b = _jsonl(tmp_path / "b.jsonl", [{"id": "dup", "text": "A second, different text."}])
    message = _ingest_error([a, b])
    assert str(b) in message
    assert "'dup' is used for two different texts" in message
    assert "The first text." in message and "A second, different text." in message


def test_invalid_json_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": broken\n', encoding="utf-8")
    assert re.fullmatch(rf"{re.escape(str(path))}:2: not valid JSON \(.+\)", _ingest_error([path]))


def test_json_line_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('["text", "in a list"]\n', encoding="utf-8")
    assert _ingest_error([path]) == f"{path}:1: expected a JSON object, got list"


def test_csv_without_the_text_column_lists_the_columns_it_has(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    assert _ingest_error([path]) == f"{path}: no 'text' column; columns are id, body"


def test_empty_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    assert _ingest_error([path]) == f"{path}: empty CSV file (no header row)"


def test_unsupported_suffix_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(b"%PDF-1.4")
    message = _ingest_error([path])
    assert message.startswith(f"{path}: unsupported file type")
    assert ".jsonl" in message and ".csv" in message


def test_folder_without_text_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only.json").write_text("{}", encoding="utf-8")
    assert "no .txt/.md/.markdown files" in _ingest_error([tmp_path])


def test_inputs_without_any_passage_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text("\n\n   \n", encoding="utf-8")
    assert _ingest_error([path]) == f"no passages in {path}"


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [
        (10, 0, "chunk_size must be at least 20 characters, got 10"),
        (100, 100, "chunk_overlap must be in [0, chunk_size); got 100 with chunk_size 100"),
        (100, -1, "chunk_overlap must be in [0, chunk_size); got -1 with chunk_size 100"),
    ],
)
def test_bad_chunk_options_are_refused(size: int, overlap: int, message: str) -> None:
    with pytest.raises(IngestError) as info:
        IngestOptions(chunk_size=size, chunk_overlap=overlap)
    assert str(info.value) == message


def test_ingest_errors_are_retrieval_errors() -> None:
    assert issubclass(IngestError, RetrievalError)
