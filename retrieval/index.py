"""The evidence index: FAISS vectors with stable int64 ids, BM25, and passages, saved as one directory."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retrieval.errors import IndexLoadError, IndexMismatchError, IngestError, QueryError, RetrievalError
from retrieval.lexical import LexicalIndex
from retrieval.store import Filters, PassageStore
from retrieval.types import Encoder, Passage, vector_id

logger = logging.getLogger(__name__)

FORMAT = "verifact-index/1"
MANIFEST, VECTORS, PASSAGES, LEXICAL, TOMBSTONES = (
    "manifest.json",
    "vectors.faiss",
    "passages.sqlite",
    "bm25",
    "tombstones.npy",
)
#: Manifest keys ``load`` reads without a default.
_REQUIRED_KEYS = ("encoder", "index_type", "count", "built_at", "updated_at")


@dataclass(frozen=True)
class IndexConfig:
    """How the vector index is built."""

    hnsw_threshold: int = 50_000
    """At or above this many passages the index is HNSW; below, exact inner product."""
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 256
    embed_title: bool = True
    """Embed 'title: text', so a sentence carries its document's topic."""
    bm25_k1: float = 0.9
    """BM25 term-frequency saturation. 0.9 and b 0.4 are Anserini's passage defaults; on the
    Climate-FEVER train claims over the padded corpus they beat Lucene's 1.2 / 0.75 (recall@5
    0.351 against 0.342, bench/results/retrieval_tune.md)."""
    bm25_b: float = 0.4
    """BM25 length normalisation, 0 (none) to 1 (full)."""

    def __post_init__(self) -> None:
        if self.hnsw_threshold < 1:
            raise RetrievalError(f"hnsw_threshold must be at least 1, got {self.hnsw_threshold}")
        if not self.bm25_k1 >= 0:
            raise RetrievalError(f"bm25_k1 must be non-negative, got {self.bm25_k1}")
        if not 0 <= self.bm25_b <= 1:
            raise RetrievalError(f"bm25_b must be between 0 and 1, got {self.bm25_b}")

    def with_bm25(self, k1: float | None = None, b: float | None = None) -> IndexConfig:
        """A copy with the BM25 settings that are given (None keeps this one's); validated."""
        return replace(
            self,
            bm25_k1=self.bm25_k1 if k1 is None else k1,
            bm25_b=self.bm25_b if b is None else b,
        )

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> IndexConfig:
        """The settings a saved index was built with (unknown keys from newer versions ignored).

        Indexes saved before the BM25 settings were configurable keep the ones their BM25 used.
        """
        stored = dict(manifest.get("config") or {})
        lexical = manifest.get("lexical") or {}
        for key, old in (("bm25_k1", "k1"), ("bm25_b", "b")):
            if key not in stored and old in lexical:
                stored[key] = lexical[old]
        return cls(**{k: v for k, v in stored.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class AddReport:
    """What an ``add`` did."""

    added: int
    duplicates: int
    seconds: float

    @property
    def passages_per_second(self) -> float:
        """Indexing throughput."""
        return self.added / self.seconds if self.seconds > 0 else 0.0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("verifact-server", "faiss-cpu", "bm25s", "sentence-transformers", "onnxruntime", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class EvidenceIndex:
    """Passages, their vectors and their BM25 terms; ``add``, ``delete``, ``rebuild``, ``save``, ``load``."""

    def __init__(self, encoder: Encoder, config: IndexConfig | None = None) -> None:
        self.encoder = encoder
        self.config = config or IndexConfig()
        self.store = PassageStore()
        self.lexical = LexicalIndex(k1=self.config.bm25_k1, b=self.config.bm25_b)
        self.index_type = "flat"
        self.vectors: Any = self._new_faiss("flat")
        self.tombstones: set[int] = set()
        self.built_at = _now()
        self.updated_at = self.built_at
        self.build_seconds = 0.0

    # -- building ---------------------------------------------------------------------------

    def _new_faiss(self, kind: str) -> Any:
        import faiss

        dim = self.encoder.dim
        inner: Any
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.config.hnsw_ef_construction
            inner.hnsw.efSearch = self.config.hnsw_ef_search
        else:
            inner = faiss.IndexFlatIP(dim)
        return faiss.IndexIDMap2(inner)

    def _wanted_type(self, count: int) -> str:
        return "hnsw" if count >= self.config.hnsw_threshold else "flat"

    def _all_vectors(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Every live vector and its id, straight from FAISS (no re-encoding)."""
        import faiss

        n = self.vectors.ntotal
        ids = faiss.vector_to_array(self.vectors.id_map).astype(np.int64)
        vecs = self.vectors.index.reconstruct_n(0, n) if n else np.zeros((0, self.encoder.dim), np.float32)
        keep = np.array([i not in self.tombstones for i in ids], dtype=bool)
        return ids[keep], np.ascontiguousarray(vecs[keep], dtype=np.float32)

    def _restructure(self, kind: str) -> None:
        """Move every live vector into a fresh FAISS index of ``kind``, dropping tombstones."""
        ids, vecs = self._all_vectors()
        fresh = self._new_faiss(kind)
        if len(ids):
            fresh.add_with_ids(vecs, ids)
        self.vectors, self.index_type, self.tombstones = fresh, kind, set()

    def add(self, passages: Iterable[Passage], show_progress: bool = False) -> AddReport:
        """Encode and add passages; exact repeats are skipped, an id reused for new text is refused.

        Raises:
            IngestError: when a passage id already holds a different text.
        """
        started = time.perf_counter()
        incoming = list(passages)
        # One lookup for the whole batch, not a query per passage.
        seen = self.store.texts_of([p.id for p in incoming])
        fresh: list[Passage] = []
        duplicates = 0
        for p in incoming:
            stored = seen.get(p.id)
            if stored is not None:
                if stored != p.text:
                    raise IngestError(f"id {p.id!r} already holds a different text; delete it first")
                duplicates += 1
                continue
            seen[p.id] = p.text
            fresh.append(p)
        if fresh:
            vids = np.array([vector_id(p.id) for p in fresh], dtype=np.int64)
            if self.tombstones.intersection(vids.tolist()):
                self._restructure(self.index_type)  # a re-added id must not meet its own ghost
            texts = [p.embedding_text(self.config.embed_title) for p in fresh]
            vecs = self.encoder.encode_document(texts, show_progress=show_progress)
            wanted = self._wanted_type(len(self.store) + len(fresh))
            if wanted != self.index_type:
                logger.info(
                    "index grows past %d passages: switching to %s", self.config.hnsw_threshold, wanted
                )
                self._restructure(wanted)
            # The store first, in one transaction: a passage it refuses (text SQLite cannot hold) must not
            # leave a vector without a passage behind, which the next save would write as a broken index.
            self.store.insert(fresh)
            try:
                self.vectors.add_with_ids(vecs, vids)
            except BaseException:
                self.store.delete([p.id for p in fresh])
                raise
            self.lexical.mark_stale()
        seconds = time.perf_counter() - started
        self.build_seconds += seconds
        self.updated_at = _now()
        return AddReport(added=len(fresh), duplicates=duplicates, seconds=seconds)

    def delete(self, passage_ids: Sequence[str]) -> int:
        """Remove passages by id without re-encoding anything; returns how many existed."""
        vids = self.store.delete(passage_ids)
        if vids:
            if self.index_type == "flat":
                self.vectors.remove_ids(np.array(vids, dtype=np.int64))
            else:
                # HNSW cannot unlink nodes; hide them until the next rebuild compacts the graph.
                self.tombstones.update(vids)
            self.lexical.mark_stale()
            self.updated_at = _now()
        return len(vids)

    def rebuild(self, encoder: Encoder | None = None, show_progress: bool = False) -> AddReport:
        """Re-encode every passage (with ``encoder`` when given) into fresh vector and BM25 indexes."""
        passages = [p for _, p in self.store.iter_all()]
        if encoder is not None:
            self.encoder = encoder
        self.store = PassageStore()
        self.vectors, self.index_type, self.tombstones = self._new_faiss("flat"), "flat", set()
        self.build_seconds = 0.0
        self.built_at = _now()
        return self.add(passages, show_progress=show_progress)

    def set_bm25(self, k1: float | None = None, b: float | None = None) -> None:
        """New BM25 settings (None keeps one); BM25 is rebuilt from the stored passages, without
        re-encoding, when next used.

        Raises:
            RetrievalError: when ``k1`` is negative or ``b`` is outside 0..1.
        """
        self.config = self.config.with_bm25(k1, b)
        self.lexical = LexicalIndex(k1=self.config.bm25_k1, b=self.config.bm25_b)
        self.updated_at = _now()

    def __len__(self) -> int:
        return len(self.store)

    # -- searching --------------------------------------------------------------------------

    def allowed_vids(self, filters: Filters | None) -> list[int] | None:
        """The FAISS ids a filter admits, or None for no filter."""
        return None if not filters else self.store.filter_vids(filters)

    def dense_search(
        self, queries: NDArray[np.float32], k: int, allowed: list[int] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top ``k`` (FAISS id, cosine) per query vector, restricted to ``allowed`` when given."""
        import faiss as faiss_mod

        faiss: Any = faiss_mod  # its stubs miss the search-parameter classes
        if k < 1:
            raise QueryError(f"k must be at least 1, got {k}")
        n_live = len(self.store)
        if n_live == 0 or (allowed is not None and not allowed):
            return [[] for _ in range(len(queries))]
        keep: Any = None
        if allowed is not None:
            keep = faiss.IDSelectorBatch(np.array(allowed, dtype=np.int64))
        elif self.tombstones:
            keep = faiss.IDSelectorNot(
                faiss.IDSelectorBatch(np.array(sorted(self.tombstones), dtype=np.int64))
            )
        if self.index_type == "hnsw":
            params: Any = faiss.SearchParametersHNSW(efSearch=max(self.config.hnsw_ef_search, k))
            if keep is not None:
                params.sel = keep
        else:
            params = faiss.SearchParameters(sel=keep) if keep is not None else None
        k_eff = min(k, n_live)
        scores, ids = self.vectors.search(
            np.ascontiguousarray(queries, dtype=np.float32), k_eff, params=params
        )
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def lexical_search(
        self, queries: Sequence[str], k: int, allowed: list[int] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top ``k`` (FAISS id, BM25 score) per query; passages with no shared term are left out."""
        if self.lexical.stale:
            self.lexical.build(self.store.iter_all(), self.config.embed_title)
        return self.lexical.search(queries, k, allowed)

    # -- persistence ------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """How this index was built; saved as manifest.json and checked on load."""
        return {
            "format": FORMAT,
            "encoder": {
                "name": self.encoder.name,
                "fingerprint": self.encoder.fingerprint,
                "dim": self.encoder.dim,
                "backend": getattr(self.encoder, "backend", "unknown"),
            },
            "metric": "inner_product",
            "normalized": True,
            "index_type": self.index_type,
            "index_choice": (
                f"{self.index_type}: {len(self.store)} passages, HNSW from {self.config.hnsw_threshold}"
            ),
            "config": asdict(self.config),
            "count": len(self.store),
            "tombstones": len(self.tombstones),
            "lexical": self.lexical.describe(),
            "content_hash": self.store.content_digest(),
            "built_at": self.built_at,
            "updated_at": self.updated_at,
            "build_seconds": round(self.build_seconds, 3),
            "versions": _versions(),
            "files": {"vectors": VECTORS, "passages": PASSAGES, "lexical": LEXICAL + "/"},
        }

    def save(self, directory: str | Path) -> dict[str, Any]:
        """Write the index to ``directory`` atomically: a temporary sibling, then a rename.

        A crash at any point leaves either the previous index or the new one, never a mix.
        """
        import faiss

        target = Path(directory).resolve()
        recovering = (target.with_name(f".{target.name}.previous") / MANIFEST).exists()
        if (
            target.exists()
            and not recovering
            and not (target / MANIFEST).exists()
            and (target.is_file() or any(target.iterdir()))
        ):
            raise RetrievalError(f"{target} exists and is not a verifact index; refusing to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.lexical.stale:
            self.lexical.build(self.store.iter_all(), self.config.embed_title)
        manifest = self.manifest()
        remove_stale_copies(target)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{_tmp_prefix(target)}{writer_tag()}-"))
        try:
            faiss.write_index(self.vectors, str(tmp / VECTORS))
            self.store.save(tmp / PASSAGES)
            self.lexical.save(tmp / LEXICAL)
            if self.tombstones:
                np.save(tmp / TOMBSTONES, np.array(sorted(self.tombstones), dtype=np.int64))
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
            for path in tmp.rglob("*"):
                if path.is_file():
                    with path.open("rb") as fh:
                        os.fsync(fh.fileno())
            previous = target.with_name(f".{target.name}.previous")
            if previous.exists():
                if (target / MANIFEST).exists():
                    shutil.rmtree(previous)
                else:  # an earlier save stopped between its renames: put the good copy back first
                    shutil.rmtree(target, ignore_errors=True)
                    previous.rename(target)
            if target.exists():
                target.rename(previous)
            tmp.rename(target)
            shutil.rmtree(previous, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return manifest

    @staticmethod
    def read_manifest(directory: str | Path) -> dict[str, Any]:
        """The manifest of a saved index (recovering the previous one after an interrupted save).

        Raises:
            IndexLoadError: when there is no index or its manifest is unreadable.
        """
        target = resolve_index_dir(Path(directory))
        try:
            manifest = json.loads((target / MANIFEST).read_text())
        except FileNotFoundError as exc:
            raise IndexLoadError(f"{target}: not an index directory (no {MANIFEST})") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexLoadError(f"{target / MANIFEST}: corrupt manifest ({exc})") from exc
        if not isinstance(manifest, dict):
            raise IndexLoadError(f"{target / MANIFEST}: corrupt manifest (not a JSON object)")
        if manifest.get("format") != FORMAT:
            raise IndexLoadError(
                f"{target}: unknown index format {manifest.get('format')!r}; expected {FORMAT}"
            )
        missing = [k for k in _REQUIRED_KEYS if k not in manifest]
        if missing:
            raise IndexLoadError(f"{target / MANIFEST}: corrupt manifest (missing {', '.join(missing)})")
        return manifest

    @classmethod
    def load(cls, directory: str | Path, encoder: Encoder) -> EvidenceIndex:
        """Open a saved index with ``encoder``, which must be the one it was built with.

        Raises:
            IndexMismatchError: when ``encoder`` differs from the manifest's (name, weights or dim).
            IndexLoadError: when files are missing or disagree with the manifest.
        """
        import faiss

        target = resolve_index_dir(Path(directory))
        manifest = cls.read_manifest(target)
        check_encoder(manifest, encoder, target)
        try:
            config = IndexConfig.from_manifest(manifest)
        except (RetrievalError, TypeError) as exc:  # a hand-edited manifest with bad settings
            raise IndexLoadError(f"{target / MANIFEST}: bad index settings ({exc})") from exc
        index = cls(encoder, config)
        try:
            index.vectors = faiss.read_index(str(target / VECTORS))
        except RuntimeError as exc:
            raise IndexLoadError(f"{target / VECTORS}: unreadable FAISS index ({exc})") from exc
        index.store = PassageStore.open(target / PASSAGES)
        index.lexical = LexicalIndex.load(target / LEXICAL)
        if (target / TOMBSTONES).exists():
            index.tombstones = set(np.load(target / TOMBSTONES).tolist())
        index.index_type = str(manifest["index_type"])
        index.built_at, index.updated_at = manifest["built_at"], manifest["updated_at"]
        index.build_seconds = float(manifest.get("build_seconds", 0.0))
        live = index.vectors.ntotal - len(index.tombstones)
        if index.vectors.d != encoder.dim or not (live == len(index.store) == manifest["count"]):
            raise IndexLoadError(
                f"{target}: files disagree (vectors {live} of dim {index.vectors.d}, passages "
                f"{len(index.store)}, manifest {manifest['count']}); rebuild the index"
            )
        return index


def check_encoder(manifest: dict[str, Any], encoder: Encoder, where: Path) -> None:
    """Refuse an encoder other than the one the index was built with.

    Raises:
        IndexMismatchError: on a different dimension or different weights.
    """
    built = manifest.get("encoder", {})
    if int(built.get("dim", -1)) != encoder.dim:
        raise IndexMismatchError(
            f"{where} was built with encoder {built.get('name')!r} (dimension {built.get('dim')}); "
            f"the offered encoder {encoder.name!r} has dimension {encoder.dim}. Use the same encoder, "
            f"or re-index with `verifact index rebuild --encoder ...`"
        )
    if built.get("fingerprint") != encoder.fingerprint:
        raise IndexMismatchError(
            f"{where} was built with encoder {built.get('name')!r} (weights {built.get('fingerprint')}); "
            f"the offered encoder {encoder.name!r} has weights {encoder.fingerprint}. Its vectors would not "
            f"be comparable: use the same encoder, or re-index with `verifact index rebuild --encoder ...`"
        )


def reencode(
    directory: str | Path,
    encoder: Encoder,
    show_progress: bool = True,
    bm25_k1: float | None = None,
    bm25_b: float | None = None,
) -> tuple[AddReport, dict[str, Any]]:
    """Re-encode a saved index's passages with ``encoder`` and save it atomically in place.

    The old encoder is never loaded, so an index can move to a new one after the old one is gone.
    ``bm25_k1`` and ``bm25_b``, when given, replace the index's BM25 settings.

    Raises:
        RetrievalError: for BM25 settings out of range (checked before any encoding).
    """
    manifest = EvidenceIndex.read_manifest(directory)
    config = IndexConfig.from_manifest(manifest).with_bm25(bm25_k1, bm25_b)
    store = PassageStore.open(resolve_index_dir(Path(directory)) / PASSAGES)
    index = EvidenceIndex(encoder, config)
    added = index.add([p for _, p in store.iter_all()], show_progress=show_progress)
    return added, index.save(directory)


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def writer_tag() -> str:
    """``<host hash>-<pid>``: who writes a temporary copy, so that only a dead writer's is removed."""
    import hashlib
    import socket

    return f"{hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_copies(target: Path, max_age_s: float = 3600.0) -> list[Path]:
    """Remove the temporary copies that saves killed midway (``kill -9``, power cut) left beside ``target``.

    A save writes a whole new copy of the index before it swaps it in; a writer that dies first leaves
    that copy behind. A copy is removed when its writer ran on this host and is gone, or, for a copy
    without a readable owner tag, when it is older than ``max_age_s``. Live writers' copies are kept.
    Returns the removed paths.
    """
    removed: list[Path] = []
    host, _, _ = writer_tag().partition("-")
    prefix = _tmp_prefix(target)
    for path in target.parent.glob(f"{prefix}*"):
        owner = path.name[len(prefix) :].split("-")
        if len(owner) >= 3 and owner[1].isdigit():
            stale = owner[0] == host and not _alive(int(owner[1]))
        else:
            try:
                stale = time.time() - path.stat().st_mtime > max_age_s
            except OSError:
                continue
        if stale and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
    if removed:
        logger.warning("%s: removed %d copies left by interrupted saves", target, len(removed))
    return removed


def resolve_index_dir(target: Path) -> Path:
    """``target``, or the previous copy an interrupted save left beside it."""
    if not (target / MANIFEST).exists():
        previous = target.with_name(f".{target.name}.previous")
        if (previous / MANIFEST).exists():
            logger.warning("%s: an earlier save was interrupted; opening the previous index", target)
            return previous
        if not target.exists():
            raise IndexLoadError(f"{target}: no such index directory")
    return target
