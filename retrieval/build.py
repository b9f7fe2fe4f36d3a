"""The indexing CLI: ``verifact index build|add|delete|search|info|rebuild`` over one index directory.

Only the standard library loads at import time, so ``verifact --help`` stays instant; numpy, FAISS,
bm25s and the encoder load inside the commands.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import IndexLoadError, QueryError, RetrievalError

if TYPE_CHECKING:
    from retrieval.encoder import Backend
    from retrieval.index import EvidenceIndex
    from retrieval.ingest import IngestOptions
    from retrieval.store import Filters
    from retrieval.types import Encoder


class IndexCommandError(RetrievalError):
    """An index command's arguments cannot be acted on (an index in the way, no ids given)."""


@dataclass(frozen=True)
class IndexCliDefaults:
    """What the caller (the ``verifact`` entry point) read from the environment."""

    index_dir: str
    """Where ``--out`` and ``--index`` point when not given."""
    encoder_cache: str | None = None
    """Where ONNX exports of encoders are kept; None for the library's default folder."""
    data_dir: str = "../shared/data"
    """Where the labelled data sets live (for ``tune``)."""


def load_encoder(name: str, backend: Backend, cache_dir: str | None) -> Encoder:
    """The encoder called ``name``; the seam tests replace with a hash-based fake."""
    from huggingface_hub.utils.tqdm import disable_progress_bars

    from retrieval.encoder import load_encoder as load

    # The commands show one bar, the encoding one; transformers' weight-loading bar follows this switch.
    disable_progress_bars()
    encoder: Encoder = load(name, backend, cache_dir)
    return encoder


def _ingest_options(ns: argparse.Namespace) -> IngestOptions:
    from retrieval.ingest import IngestOptions

    return IngestOptions(
        id_field=ns.id_field,
        text_field=ns.text_field,
        title_field=ns.title_field,
        source_field=ns.source_field,
        url_field=ns.url_field,
        chunk_size=ns.chunk_size,
        chunk_overlap=ns.chunk_overlap,
    )


def open_index(ns: argparse.Namespace) -> EvidenceIndex:
    """The index at ``--index``, opened with the encoder its manifest names."""
    from retrieval.index import EvidenceIndex

    manifest = EvidenceIndex.read_manifest(ns.index)
    encoder = load_encoder(str(manifest["encoder"]["name"]), ns.backend, ns.encoder_cache)
    return EvidenceIndex.load(ns.index, encoder)


def _refuse_overwrite(out: Path, force: bool) -> None:
    """Only ``--force`` replaces an index, and nothing replaces a folder that holds something else."""
    from retrieval.index import MANIFEST, EvidenceIndex

    if out.exists() and not out.is_dir():
        raise IndexCommandError(f"{out}: is a file, not an index directory")
    try:
        EvidenceIndex.read_manifest(out)
        holds_index = True
    except IndexLoadError:
        holds_index = (out / MANIFEST).exists()  # a corrupt index may still be replaced
    if holds_index and not force:
        raise IndexCommandError(
            f"{out}: an index already exists; pass --force to replace it, or use `verifact index add`"
        )
    if not holds_index and out.is_dir() and any(out.iterdir()):
        raise IndexCommandError(f"{out}: folder is not empty and holds no index; refusing to replace it")


def _echo(line: str) -> None:
    """One line of the command's output on stdout: this module is a CLI, its output the product."""
    print(line)  # noqa: T201


def _throughput(count: int, seconds: float) -> str:
    return f"{count / seconds:,.1f} passages/s" if seconds > 0 else "n/a"


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        _echo(f"{key:<{width}}  {value}")


def cmd_build(ns: argparse.Namespace) -> int:
    """Ingest files and folders, encode them, and save a new index atomically."""
    from retrieval.encoder import PACKAGED_ENCODER
    from retrieval.index import EvidenceIndex, IndexConfig
    from retrieval.ingest import collect

    out = Path(ns.out)
    _refuse_overwrite(out, ns.force)
    try:
        config = IndexConfig(hnsw_threshold=ns.hnsw_threshold, embed_title=not ns.no_title).with_bm25(
            ns.bm25_k1, ns.bm25_b
        )
    except RetrievalError as exc:
        raise IndexCommandError(f"bad index setting: {exc}") from exc
    started = time.perf_counter()
    # Read every input before paying for the encoder, so a bad file fails in a second.
    passages, report = collect(ns.inputs, _ingest_options(ns))
    ingest_seconds = time.perf_counter() - started
    encoder = load_encoder(ns.encoder or PACKAGED_ENCODER, ns.backend, ns.encoder_cache)
    index = EvidenceIndex(encoder, config)
    added = index.add(passages, show_progress=True)
    saved_at = time.perf_counter()
    manifest = index.save(out)
    save_seconds = time.perf_counter() - saved_at
    total = ingest_seconds + added.seconds + save_seconds
    _print_rows(
        [
            ("index", str(out)),
            ("passages", f"{added.added} from {report.files} file(s), {report.records} record(s)"),
            ("duplicates", f"{report.duplicates + added.duplicates} skipped"),
            ("type", str(manifest["index_choice"])),
            ("encoder", f"{encoder.name} ({manifest['encoder']['backend']}, dim {encoder.dim})"),
            (
                "time",
                f"{total:.2f} s: read {ingest_seconds:.2f} s, encode {added.seconds:.2f} s, "
                f"save {save_seconds:.2f} s (loading the encoder not counted)",
            ),
            ("speed", _throughput(added.added, added.seconds)),
        ]
    )
    return 0


def cmd_add(ns: argparse.Namespace) -> int:
    """Add passages to an existing index and save it atomically."""
    from retrieval.ingest import collect

    passages, report = collect(ns.inputs, _ingest_options(ns))
    index = open_index(ns)
    added = index.add(passages, show_progress=True)
    if added.added:
        index.save(ns.index)
    _print_rows(
        [
            ("index", str(ns.index)),
            ("added", f"{added.added} passage(s); the index now holds {len(index)}"),
            ("duplicates", f"{report.duplicates + added.duplicates} skipped"),
            ("speed", f"{_throughput(added.added, added.seconds)} ({added.seconds:.2f} s)"),
        ]
    )
    return 0


def _read_ids(ns: argparse.Namespace) -> list[str]:
    ids = list(ns.ids)
    if ns.ids_file:
        try:
            text = Path(ns.ids_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise IndexCommandError(f"{ns.ids_file}: cannot read the ids file ({exc.strerror})") from exc
        ids += [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise IndexCommandError("no ids given (pass them as arguments or with --ids-file)")
    return list(dict.fromkeys(ids))


def cmd_delete(ns: argparse.Namespace) -> int:
    """Delete passages by id and save the index atomically."""
    ids = _read_ids(ns)
    index = open_index(ns)
    stored = index.store.texts_of(ids)
    missing = [pid for pid in ids if pid not in stored]
    deleted = index.delete(ids)
    if deleted:
        index.save(ns.index)
    _echo(f"deleted {deleted} of {len(ids)} id(s); the index now holds {len(index)}")
    if missing:
        _echo(f"not found ({len(missing)}): {', '.join(missing)}")
    return 0


def parse_filters(items: list[str]) -> Filters:
    """``KEY=VALUE`` pairs as search filters: one key given twice matches either value.

    A value that reads as a JSON number or boolean also matches that number or boolean, since
    metadata keeps the types its input had (``chunk=0`` finds the integer 0).

    Raises:
        QueryError: on an item without ``=`` or with an empty key.
    """

    filters: dict[str, list[str | int | float | bool]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise QueryError(f"--filter expects KEY=VALUE, got {item!r}")
        values = filters.setdefault(key.strip(), [])
        values.append(value)
        try:
            typed = json.loads(value)
        except json.JSONDecodeError:
            continue
        if isinstance(typed, int | float | bool):
            values.append(typed)
    return filters


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def cmd_search(ns: argparse.Namespace) -> int:
    """Search an index and print a table, or JSON with ``--json``."""
    from retrieval.retriever import MAX_K, Retriever, SearchSettings

    # Check the request before loading anything, so a typo costs nothing.
    if not 1 <= ns.k <= MAX_K:
        raise QueryError(f"--k must be between 1 and {MAX_K}, got {ns.k}")
    if not ns.query.strip():
        raise QueryError("the query is empty")
    filters = parse_filters(ns.filters)
    settings = SearchSettings(
        mode=ns.mode, fusion=ns.fusion, dense_weight=ns.dense_weight, lexical_weight=ns.lexical_weight
    )
    reranker = None
    if ns.reranker:
        from retrieval.retriever import CrossEncoderReranker

        reranker = CrossEncoderReranker(ns.reranker)
    hits = Retriever(open_index(ns), settings, reranker).search(ns.query, ns.k, filters or None)
    if ns.json:
        _echo(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        _echo("no passages matched")
        return 0
    id_w = min(24, max(2, *(len(h.id) for h in hits)))
    title_w = min(24, max(5, *(len(h.passage.title) for h in hits)))
    _echo(
        f"{'rank':>4}  {'id':<{id_w}}  {'score':>8}  {'dense':>8}  {'lexical':>8}  {'title':<{title_w}}  text"
    )
    for h in hits:
        ident, title, text = _cut(h.id, id_w), _cut(h.passage.title, title_w), _cut(h.passage.text, 60)
        scores = f"{h.score:>8.4f}  {_score(h.dense_score):>8}  {_score(h.lexical_score):>8}"
        _echo(f"{h.rank:>4}  {ident:<{id_w}}  {scores}  {title:<{title_w}}  {text}")
    return 0


def _disk_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def cmd_info(ns: argparse.Namespace) -> int:
    """Print the manifest and the size on disk; reads no vectors and loads no encoder."""
    from retrieval.index import EvidenceIndex, resolve_index_dir

    manifest = EvidenceIndex.read_manifest(ns.index)
    where = resolve_index_dir(Path(ns.index))
    size = _disk_size(where)
    info: dict[str, Any] = {
        **manifest,
        "on_disk": {"path": str(where), "bytes": size, "mib": round(size / 2**20, 3)},
    }
    _echo(json.dumps(info, indent=2, ensure_ascii=False))
    return 0


def cmd_rebuild(ns: argparse.Namespace) -> int:
    """Re-encode every passage (with ``--encoder`` when given), or with ``--lexical-only`` just BM25.

    The old encoder is never loaded when re-encoding, so an index can move to a new one after the
    old one is gone.
    """
    from retrieval.index import EvidenceIndex, IndexConfig, reencode

    manifest = EvidenceIndex.read_manifest(ns.index)
    try:
        IndexConfig().with_bm25(ns.bm25_k1, ns.bm25_b)  # out-of-range settings fail before any work
    except RetrievalError as exc:
        raise IndexCommandError(f"bad index setting: {exc}") from exc
    if ns.lexical_only:
        if ns.encoder:
            raise IndexCommandError("--lexical-only keeps the vectors; it takes no --encoder")
        started = time.perf_counter()
        index = open_index(ns)
        was = (index.config.bm25_k1, index.config.bm25_b)
        index.set_bm25(ns.bm25_k1, ns.bm25_b)
        saved = index.save(ns.index)
        rows = [
            ("index", str(ns.index)),
            ("passages", f"{saved['count']} (vectors kept)"),
            ("bm25", f"k1 {was[0]} -> {index.config.bm25_k1}, b {was[1]} -> {index.config.bm25_b}"),
            ("time", f"{time.perf_counter() - started:.2f} s"),
        ]
        _print_rows(rows)
        return 0
    encoder = load_encoder(ns.encoder or str(manifest["encoder"]["name"]), ns.backend, ns.encoder_cache)
    added, saved = reencode(ns.index, encoder, bm25_k1=ns.bm25_k1, bm25_b=ns.bm25_b)
    _print_rows(
        [
            ("index", str(ns.index)),
            ("passages", str(added.added)),
            ("type", str(saved["index_choice"])),
            ("encoder", f"{manifest['encoder']['name']} -> {encoder.name} ({saved['encoder']['backend']})"),
            ("bm25", f"k1 {saved['lexical']['k1']}, b {saved['lexical']['b']}"),
            ("speed", f"{_throughput(added.added, added.seconds)} ({added.seconds:.2f} s)"),
        ]
    )
    return 0


def _add_bm25_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    # No import of retrieval.index here (numpy and FAISS stay out of the parser): the defaults
    # live in IndexConfig and apply when these are not given.
    k1, b = (default, default) if default else ("0.9", "0.4")
    p.add_argument(
        "--bm25-k1", type=float, metavar="K1", help=f"BM25 term-frequency saturation (default: {k1})"
    )
    p.add_argument(
        "--bm25-b", type=float, metavar="B", help=f"BM25 length normalisation, 0 to 1 (default: {b})"
    )


def _add_ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=".jsonl, .csv, .txt/.md files or folders")
    fields = p.add_argument_group("input fields (JSONL keys and CSV columns)")
    for name in ("id", "text", "title", "source", "url"):
        fields.add_argument(f"--{name}-field", default=name, metavar="NAME", help=f"default: {name}")
    chunks = p.add_argument_group("splitting .txt/.md files into passages")
    chunks.add_argument("--chunk-size", type=int, default=800, metavar="N", help="characters (default: 800)")
    chunks.add_argument(
        "--chunk-overlap", type=int, default=100, metavar="N", help="characters (default: 100)"
    )


def _add_encoder_args(p: argparse.ArgumentParser, defaults: IndexCliDefaults, choose: str | None) -> None:
    if choose is not None:
        p.add_argument("--encoder", metavar="NAME", help=choose)
    p.add_argument(
        "--backend", default="auto", choices=["auto", "torch", "onnx"], help="how to run the encoder"
    )
    p.add_argument(
        "--encoder-cache",
        default=defaults.encoder_cache,
        metavar="DIR",
        help="where ONNX exports are kept (default: $VERIFACT_ENCODER_CACHE or ~/.cache/verifact/encoders)",
    )


def add_index_parser(subparsers: Any, defaults: IndexCliDefaults) -> None:
    """Register ``index`` and its sub-commands on the caller's ``add_subparsers()`` object."""
    index_help = f"index directory (default: $VERIFACT_INDEX_DIR or {defaults.index_dir})"
    group = subparsers.add_parser(
        "index",
        help="build, update and search an evidence index",
        description=f"Build, update and search an evidence index; {index_help}.",
    )
    sub = group.add_subparsers(dest="index_command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="build a new index from files and folders")
    _add_ingest_args(p)
    p.add_argument("--out", default=defaults.index_dir, metavar="DIR", help=index_help)
    p.add_argument("--force", action="store_true", help="replace an existing index (atomically)")
    _add_encoder_args(p, defaults, "sentence encoder: a local directory, a hub id, or the packaged default")
    p.add_argument(
        "--hnsw-threshold",
        type=int,
        default=50_000,
        metavar="N",
        help="HNSW from N passages (default: 50000)",
    )
    p.add_argument("--no-title", action="store_true", help="embed passage text without its title")
    _add_bm25_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("add", help="add files and folders to an index")
    _add_ingest_args(p)
    p.add_argument("--index", default=defaults.index_dir, metavar="DIR", help=index_help)
    _add_encoder_args(p, defaults, None)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("delete", help="delete passages by id")
    p.add_argument("ids", nargs="*", metavar="ID", help="passage ids")
    p.add_argument("--ids-file", metavar="FILE", help="more ids, one per line")
    p.add_argument("--index", default=defaults.index_dir, metavar="DIR", help=index_help)
    _add_encoder_args(p, defaults, None)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("search", help="search an index")
    p.add_argument("query", help="what to look for, e.g. a claim")
    p.add_argument("--index", default=defaults.index_dir, metavar="DIR", help=index_help)
    p.add_argument("--k", "-k", type=int, default=5, help="how many hits (default: 5)")
    p.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
    p.add_argument(
        "--fusion",
        default="rrf",
        choices=["rrf", "convex"],
        help="how hybrid merges dense and BM25: reciprocal rank (default) or weighted z-scored scores",
    )
    p.add_argument("--dense-weight", type=float, default=1.0, metavar="W", help="the dense list's weight")
    p.add_argument("--lexical-weight", type=float, default=1.0, metavar="W", help="the BM25 list's weight")
    p.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep passages whose id, title, source, url or metadata KEY equals VALUE (repeatable: "
        "one key twice means either value, two keys mean both)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON array of hits")
    p.add_argument(
        "--reranker",
        metavar="NAME",
        help="rescore the top hits with this cross-encoder (a local dir or hub id)",
    )
    _add_encoder_args(p, defaults, None)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("info", help="print an index's manifest and size (fast: loads no encoder)")
    p.add_argument("--index", default=defaults.index_dir, metavar="DIR", help=index_help)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("rebuild", help="re-encode every passage, e.g. with a new encoder")
    p.add_argument("--index", default=defaults.index_dir, metavar="DIR", help=index_help)
    _add_encoder_args(p, defaults, "encode with this encoder instead of the one the index names")
    _add_bm25_args(p, "the index's own")
    p.add_argument(
        "--lexical-only",
        action="store_true",
        help="rebuild only BM25 (e.g. with new --bm25-k1/--bm25-b) and keep the vectors",
    )
    p.set_defaults(func=cmd_rebuild)

    from retrieval.tune_command import add_tune_parser

    add_tune_parser(sub, defaults, index_help, _add_encoder_args)
