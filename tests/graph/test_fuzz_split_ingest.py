"""Fuzzing the splitter and ingestion with hypothesis: arbitrary Unicode, control characters, mixed
scripts, right-to-left text, empty documents, and one explicit 1 MB text.

The splitter never raises and its offsets always point back into the text. Ingestion either yields
passages that the index can hold, or raises the typed `IngestError`, nothing else. Each test counts
its cases (`tests.fuzz_report`) and asserts how many ran.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.splitter import PysbdSplitter
from retrieval.errors import IngestError
from retrieval.index import EvidenceIndex
from retrieval.ingest import KNOWN_FIELDS, IngestOptions, collect
from tests.fakes import HashEncoder
from tests.fuzz_report import record

T = TypeVar("T")

MB = 1_000_000
SPLIT_EXAMPLES = 300
INGEST_EXAMPLES = 150

# -- what texts are made of -------------------------------------------------------------------

_CONTROLS = "\x00\x07\x08\t\n\x0b\x0c\r\x1b\x1c\x1f\x7f\x85\u2028\u2029\ufeff\u200b\u200c\u200d"
_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
_WORDS = (
    "Global", "temperatures", "rose", "1.1", "degrees", "3.5%", "Dr.", "U.S.", "e.g.", "Mr.", "No.",
    "مرحبا", "بالعالم", "ارتفعت", "درجات", "الحرارة", "שלום", "עולם", "הטמפרטורה", "עלתה",
    "東京は大きい", "気温が上がった", "Ελλάδα", "Россия", "выросла", "ñandú", "naïve", "é", "🌍", "👩‍👩‍👧",
    "1880", "٣٫٥٪", "x²", "ﷺ", "Z̤͔ͧ̑̓", "ǅ", "ß", "İ",
)  # fmt: skip
_PUNCT = (
    ". ",
    "! ",
    "? ",
    "?! ",
    "...",
    "…",
    "。",
    "！",
    "？",
    "؟ ",
    "۔ ",
    "׃ ",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
)
_tokens = st.one_of(
    st.sampled_from(_WORDS),
    st.sampled_from(_PUNCT),
    st.text(st.sampled_from(_CONTROLS + _BIDI), min_size=1, max_size=3),
    st.text(st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), min_size=1, max_size=12),  # RTL
    st.text(st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF), min_size=1, max_size=8),  # CJK
    st.text(max_size=10),  # any code point but surrogates
    st.integers(0xD800, 0xDFFF).map(chr),  # a lone surrogate, as "\ud800" in JSON decodes to
)
texts = st.lists(_tokens, max_size=80).map("".join)
"""Texts mixing words of several scripts, sentence ends, controls, bidi marks and random characters."""


def fuzz(name: str, strategy: st.SearchStrategy[T], check: Callable[[T], None], examples: int) -> int:
    """Run ``check`` on ``examples`` generated values; record and return how many ran."""
    count = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,  # nothing written to the working tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def run(value: T) -> None:
        nonlocal count
        count += 1
        check(value)

    started = time.perf_counter()
    run()
    record("hypothesis", name, count, seconds=round(time.perf_counter() - started, 2))
    return count


# -- the splitter -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splitter() -> PysbdSplitter:
    return PysbdSplitter()


def check_split(splitter: PysbdSplitter, text: str) -> None:
    """Offsets point back into the text, in order, without overlap; no text is lost; blank is empty."""
    sentences = splitter.split(text)
    assert [s.index for s in sentences] == list(range(len(sentences)))
    cursor = 0
    for s in sentences:
        assert text[s.start : s.end] == s.text
        assert s.text and s.text == s.text.strip()
        assert cursor <= s.start < s.end
        assert not text[cursor : s.start].strip(), f"text lost before sentence {s.index}"
        cursor = s.end
    assert not text[cursor:].strip(), "text lost at the end"
    if not text.strip():
        assert sentences == []


def test_the_splitter_never_raises_and_its_offsets_point_back_into_any_text(splitter: PysbdSplitter) -> None:
    cases = fuzz("splitter", texts, lambda text: check_split(splitter, text), SPLIT_EXAMPLES)

    assert cases >= SPLIT_EXAMPLES // 2


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \n\t\u2028",
        "\ufeff",
        "\u202eGlobal temperatures rose 1.1 degrees.\u202c מדענים אומרים שהטמפרטורה עלתה. Really?",
        "ارتفعت درجات الحرارة. The U.S. agreed! 東京は大きい。 Ελλάδα.",
        "\x00\x00. \x00",
        "\ud800 rose 5 percent. \udfff",
        "Dr." * 2000,
        "." * 5000,
    ],
)
def test_hand_picked_texts_split_cleanly(splitter: PysbdSplitter, text: str) -> None:
    check_split(splitter, text)


def _one_megabyte() -> str:
    """1 MB of mixed-script prose with abbreviations, controls and bidi marks: the worst case for pysbd."""
    pieces = itertools.cycle(
        [
            "Global temperatures rose 1.1 degrees since 1880, Dr. Smith of the U.S. agency said. ",
            "ارتفعت درجات الحرارة ١٫١ درجة منذ عام ١٨٨٠. ",
            "\u202bהטמפרטורה העולמית עלתה במעלה אחת.\u202c ",
            "東京の気温は上がった。",
            "Was it 3.5% in 2019?! Nobody knows\x0b for sure.\n",
            "Ελλάδα και Россия\t— e.g. both — reported it…\n\n",
        ]
    )
    out, size = [], 0
    for n in itertools.count():
        if size >= MB:
            break
        piece = f"Report {n}: {next(pieces)}"  # numbered, so no passage is a duplicate of another
        out.append(piece)
        size += len(piece)
    return "".join(out)[:MB]


def test_a_one_megabyte_text_splits_in_linear_time(splitter: PysbdSplitter) -> None:
    text = _one_megabyte()
    started = time.perf_counter()
    check_split(splitter, text)
    seconds = time.perf_counter() - started

    record("hypothesis", "splitter-1mb", 1, seconds=round(seconds, 2))
    # pysbd alone is quadratic (minutes for this text); windowed, it takes seconds even on a busy machine.
    assert seconds < 60


# -- ingestion --------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
_records = st.dictionaries(st.sampled_from(KNOWN_FIELDS) | st.text(max_size=6), _json_values, max_size=6)
_passage_records = st.fixed_dictionaries(
    {"text": texts}, optional={"id": texts | st.integers(), "title": texts, "metadata": _json_values}
)
_jsonl_lines = st.one_of(
    _passage_records.map(json.dumps),  # \uXXXX escapes, lone surrogates included
    _records.map(json.dumps),
    _records.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "replace").decode()),
    _json_values.map(json.dumps),  # JSON, but not an object
    texts,  # not JSON at all
    st.just(""),
)


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


_csv_cells = texts.map(lambda t: t.encode("utf-8", "replace").decode())
_csv_documents = st.one_of(
    st.lists(st.lists(_csv_cells, max_size=4), max_size=5).map(_csv),
    st.tuples(
        st.lists(st.sampled_from(["id", "text", "title", "source", "url", "extra"]), min_size=1, max_size=4),
        st.lists(st.lists(_csv_cells, max_size=5), max_size=4),
    ).map(lambda hr: _csv([hr[0], *hr[1]])),
    texts,
)
_contents = st.one_of(
    texts.map(lambda t: t.encode("utf-8", "surrogatepass")),  # lone surrogates as (invalid) UTF-8 bytes
    texts.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "replace")),  # with a byte-order mark
    st.binary(max_size=64),
)
documents = st.one_of(
    st.tuples(
        st.just("data.jsonl"),
        st.lists(_jsonl_lines, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "replace")),
    ),
    st.tuples(st.just("data.csv"), _csv_documents.map(lambda t: t.encode("utf-8", "replace"))),
    st.tuples(st.sampled_from(["notes.txt", "page.md", "data.jsonl", "data.csv"]), _contents),
    st.tuples(
        st.just("folder"),
        st.lists(st.tuples(st.sampled_from(["a.txt", "b.md", "c.markdown", "d.bin"]), _contents), max_size=3),
    ),
)
"""(file name, bytes), or ("folder", [(file name, bytes), ...])."""


def _write(root: Path, document: tuple[str, Any]) -> Path:
    name, content = document
    root.mkdir(parents=True)
    if name != "folder":
        (root / name).write_bytes(content)
        return root / name
    for file_name, data in content:
        (root / "folder" / file_name).parent.mkdir(exist_ok=True)
        (root / "folder" / file_name).write_bytes(data)
    (root / "folder").mkdir(exist_ok=True)
    return root / "folder"


def check_ingest(path: Path) -> int:
    """Passages the index can hold (their number), or an `IngestError` (0); anything else fails the test."""
    try:
        passages, report = collect([path], IngestOptions(chunk_size=200, chunk_overlap=20))
    except IngestError:
        return 0
    assert passages and report.passages == len(passages)
    for p in passages:
        assert p.id and p.text and p.text == p.text.strip()
        p.text.encode("utf-8")  # raises on a lone surrogate
        p.id.encode("utf-8")
    EvidenceIndex(HashEncoder(dim=32)).add(passages)  # what ingestion yields must be indexable
    return len(passages)


def test_ingestion_yields_indexable_passages_or_raises_ingest_error(tmp_path: Path) -> None:
    folders = itertools.count()
    outcomes: list[int] = []
    cases = fuzz(
        "ingestion",
        documents,
        lambda document: outcomes.append(check_ingest(_write(tmp_path / f"case-{next(folders)}", document))),
        INGEST_EXAMPLES,
    )

    assert cases >= INGEST_EXAMPLES // 2
    # Both ends are reached: documents that ingest, and documents refused with an IngestError.
    assert any(outcomes) and not all(outcomes), outcomes


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"\n \n\t\n"),
        ("empty.csv", b""),
        ("header-only.csv", b"id,text\n"),
        ("empty.txt", b""),
        ("bom.txt", b"\xef\xbb\xbf"),
        ("surrogate.jsonl", b'{"text": "half a pair \\ud83c here"}\n'),
        ("surrogate-id.jsonl", b'{"id": "\\udfff", "text": "a fine text"}\n'),
        ("pair.jsonl", b'{"text": "a whole pair \\ud83c\\udf0d here"}\n'),
        ("latin1.csv", "id,text\n1,café\n".encode("latin-1")),
        ("rtl.md", "# כותרת\n\nהטמפרטורה עלתה. ارتفعت درجات الحرارة.\n".encode()),
    ],
)
def test_hand_picked_documents_ingest_or_fail_typed(tmp_path: Path, name: str, content: bytes) -> None:
    check_ingest(_write(tmp_path / "case", (name, content)))


def test_an_empty_folder_is_an_ingest_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"no \.txt"):
        collect([_write(tmp_path / "case", ("folder", []))])


def test_a_one_megabyte_text_file_ingests(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text(_one_megabyte(), encoding="utf-8")
    started = time.perf_counter()
    passages = check_ingest(path)
    record("hypothesis", "ingestion-1mb", 1, seconds=round(time.perf_counter() - started, 2))

    assert passages > MB // 200  # chunks of at most 200 characters
