"""Read documents into passages: JSONL, CSV, or folders of .txt/.md files split on sentences."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.errors import IngestError
from retrieval.types import Passage, content_id

logger = logging.getLogger(__name__)

KNOWN_FIELDS = ("id", "text", "title", "source", "url", "metadata")
TEXT_SUFFIXES = (".txt", ".md", ".markdown")
#: A sentence ends at ., ! or ? followed by space; the splitter tries paragraphs and lines first.
_SENTENCE_BREAK = r"(?<=[.!?])\s+"
#: A JSON escape of half a surrogate pair: json accepts it alone, and no UTF-8 store can hold that.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class IngestOptions:
    """How inputs become passages."""

    id_field: str = "id"
    text_field: str = "text"
    title_field: str = "title"
    source_field: str = "source"
    url_field: str = "url"
    chunk_size: int = 800
    """Characters per passage for text files."""
    chunk_overlap: int = 100
    """Characters shared by neighbouring passages of a text file."""

    def __post_init__(self) -> None:
        if self.chunk_size < 20:
            raise IngestError(f"chunk_size must be at least 20 characters, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise IngestError(
                f"chunk_overlap must be in [0, chunk_size); got {self.chunk_overlap} with "
                f"chunk_size {self.chunk_size}"
            )


@dataclass
class IngestReport:
    """What ingestion read, kept and skipped."""

    files: int = 0
    records: int = 0
    passages: int = 0
    duplicates: int = 0
    per_file: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "files": self.files,
            "records": self.records,
            "passages": self.passages,
            "duplicates_skipped": self.duplicates,
            "per_file": dict(self.per_file),
        }


class PassageDeduplicator:
    """Keeps the first of every id and every exact text; refuses an id reused for another text."""

    def __init__(self) -> None:
        self._by_id: dict[str, str] = {}
        self._texts: set[str] = set()
        self.duplicates = 0

    def admit(self, passage: Passage, where: str) -> bool:
        """True when ``passage`` is new; False (and counted) when it repeats an earlier one.

        Raises:
            IngestError: when its id was already used for a different text.
        """
        seen = self._by_id.get(passage.id)
        if seen is not None:
            if seen != passage.text:
                raise IngestError(
                    f"{where}: id {passage.id!r} is used for two different texts "
                    f"({_snippet(seen)!r} and {_snippet(passage.text)!r})"
                )
            self.duplicates += 1
            return False
        if passage.text in self._texts:
            self.duplicates += 1
            return False
        self._by_id[passage.id] = passage.text
        self._texts.add(passage.text)
        return True


def _snippet(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise IngestError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise IngestError(f"{path}: is a directory, not a file") from exc
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: not valid UTF-8 (byte {exc.start}: {exc.reason}); convert it to UTF-8 first"
        ) from exc
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read ({exc.strerror})") from exc


def _record_to_passage(
    record: dict[str, Any], opts: IngestOptions, where: str, default_source: str
) -> Passage:
    text = record.get(opts.text_field)
    if not isinstance(text, str) or not text.strip():
        raise IngestError(f"{where}: record has no text in field {opts.text_field!r}")
    text = text.strip()
    raw_id = record.get(opts.id_field)
    pid = str(raw_id).strip() if raw_id not in (None, "") else content_id(text)
    metadata = record.get("metadata")
    meta: dict[str, Any] = dict(metadata) if isinstance(metadata, dict) else {}
    used = {opts.id_field, opts.text_field, opts.title_field, opts.source_field, opts.url_field, "metadata"}
    meta.update({k: v for k, v in record.items() if k not in used and v not in (None, "")})
    return Passage(
        id=pid,
        text=text,
        title=str(record.get(opts.title_field) or "").strip(),
        source=str(record.get(opts.source_field) or default_source).strip(),
        url=str(record.get(opts.url_field) or "").strip(),
        metadata=meta,
    )


def iter_jsonl(path: Path, missing_hint: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """("file:line", object) for every non-blank line of a JSONL file.

    Raises:
        IngestError: on a missing or unreadable file, a line that is not JSON, or a non-object.
    """
    if missing_hint and not path.exists():
        raise IngestError(f"{path}: no such file ({missing_hint})")
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise IngestError(f"{where}: expected a JSON object, got {type(record).__name__}")
        if _SURROGATE_ESCAPE.search(line) and not _encodable(record):
            raise IngestError(f"{where}: a \\u escape stands for half a surrogate pair (not valid Unicode)")
        yield where, record


def _encodable(record: dict[str, Any]) -> bool:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_jsonl(path: Path, opts: IngestOptions) -> Iterator[Passage]:
    """Passages from a JSONL file, one object per line; blank lines are skipped."""
    for where, record in iter_jsonl(path):
        yield _record_to_passage(record, opts, where, path.name)


def read_csv(path: Path, opts: IngestOptions) -> Iterator[Passage]:
    """Passages from a CSV file with a header row; unknown columns become metadata."""
    # keepends: a quoted cell that spans lines keeps its line breaks instead of gluing words together.
    reader = csv.DictReader(_read_text(path).splitlines(keepends=True))
    if reader.fieldnames is None:
        raise IngestError(f"{path}: empty CSV file (no header row)")
    if opts.text_field not in reader.fieldnames:
        raise IngestError(
            f"{path}: no {opts.text_field!r} column; columns are {', '.join(reader.fieldnames)}"
        )
    for lineno, row in enumerate(reader, start=2):
        where = f"{path}:{lineno}"
        if None in row:  # DictReader files surplus cells under the key None
            raise IngestError(f"{where}: more cells than the header has columns")
        yield _record_to_passage(dict(row), opts, where, path.name)


def _text_splitter(opts: IngestOptions) -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    # Paragraphs first, then lines, then sentence ends; words only when a sentence is too long.
    # keep_separator="end": with False the splitter re-joins pieces with the separator string
    # itself, which for a regex separator pastes the pattern into the passage text.
    return RecursiveCharacterTextSplitter(
        separators=["\n\n", "\n", _SENTENCE_BREAK, " ", ""],
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=opts.chunk_size,
        chunk_overlap=opts.chunk_overlap,
        strip_whitespace=True,
    )


def read_text_file(
    path: Path, opts: IngestOptions, root: Path, splitter: Any | None = None
) -> Iterator[Passage]:
    """Passages from one .txt/.md file, split on sentence boundaries with overlap."""
    splitter = splitter or _text_splitter(opts)
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    for i, chunk in enumerate(splitter.split_text(_read_text(path))):
        text = chunk.strip()
        if text:
            yield Passage(
                id=content_id(text),
                text=text,
                title=path.stem,
                source=rel,
                metadata={"path": rel, "chunk": i},
            )


def read_folder(folder: Path, opts: IngestOptions) -> Iterator[tuple[Path, Iterator[Passage]]]:
    """Every .txt/.md file under ``folder``, in path order, with its passages."""
    splitter = _text_splitter(opts)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise IngestError(f"{folder}: no {'/'.join(TEXT_SUFFIXES)} files in this folder")
    for path in files:
        yield path, read_text_file(path, opts, folder, splitter)


def _sources(inputs: Sequence[str | Path], opts: IngestOptions) -> Iterator[tuple[Path, Iterator[Passage]]]:
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from read_folder(path, opts)
        elif not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        elif path.suffix.lower() in (".jsonl", ".ndjson"):
            yield path, read_jsonl(path, opts)
        elif path.suffix.lower() in (".csv",):
            yield path, read_csv(path, opts)
        elif path.suffix.lower() in TEXT_SUFFIXES:
            yield path, read_text_file(path, opts, path.parent)
        else:
            raise IngestError(
                f"{path}: unsupported file type; use .jsonl, .csv, .txt, .md or a folder of them"
            )


def ingest(
    inputs: Sequence[str | Path], opts: IngestOptions | None = None, report: IngestReport | None = None
) -> Iterator[Passage]:
    """Stream de-duplicated passages from files and folders; ``report`` collects the counts.

    Raises:
        IngestError: on a missing file, bad encoding, a record without text or an id collision.
    """
    opts = opts or IngestOptions()
    report = report if report is not None else IngestReport()
    dedup = PassageDeduplicator()
    for path, passages in _sources(inputs, opts):
        report.files += 1
        kept = 0
        for passage in passages:
            report.records += 1
            if dedup.admit(passage, str(path)):
                kept += 1
                yield passage
        report.per_file[str(path)] = kept
        report.passages += kept
    report.duplicates = dedup.duplicates
    if report.passages == 0:
        raise IngestError(f"no passages in {', '.join(map(str, inputs))}")


def collect(
    inputs: Iterable[str | Path], opts: IngestOptions | None = None
) -> tuple[list[Passage], IngestReport]:
    """All passages of ``inputs`` in a list, with the report."""
    report = IngestReport()
    passages = list(ingest(list(inputs), opts, report))
    return passages, report
