"""The evidence index: building, incremental changes, HNSW tombstones, atomic saves and safe loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import IndexLoadError, IndexMismatchError, IngestError, RetrievalError
from retrieval.index import FORMAT, EvidenceIndex, IndexConfig, writer_tag
from retrieval.lexical import LexicalIndex
from retrieval.retriever import Mode, Retriever, SearchSettings
from retrieval.store import PassageStore
from retrieval.types import Passage, vector_id
from tests.fakes import HashEncoder
from tests.retrieval.conftest import CORPUS, by_id

QUERIES = [
    "arctic sea ice record low",
    "measles vaccine autism",
    "rover on mars",
    "berlin wall november",
    "minimum wage employment",
]
NEW = Passage(
    id="new-1",
    text="Honeybees communicate the direction of flowers with a waggle dance.",
    title="Bees",
    source="wiki",
    metadata={"topic": "science", "year": 1967},
)


def _results(index: EvidenceIndex, query: str, mode: Mode = "hybrid", k: int = 5) -> list[tuple[Any, ...]]:
    hits = Retriever(index, SearchSettings(mode=mode)).search(query, k=k)
    return [(h.id, h.score, h.dense_score, h.lexical_score) for h in hits]


def _ids(index: EvidenceIndex, query: str, mode: Mode = "hybrid", k: int = 5) -> list[str]:
    return [row[0] for row in _results(index, query, mode, k)]


def _leftovers(index_dir: Path) -> list[str]:
    """Hidden siblings a save may leave: temporary directories and the previous copy."""
    return sorted(p.name for p in index_dir.parent.iterdir() if p.name.startswith(f".{index_dir.name}."))


# -- building ---------------------------------------------------------------------------------


def test_add_indexes_every_passage_in_one_encoder_call(encoder: HashEncoder) -> None:
    index = EvidenceIndex(encoder)
    report = index.add(CORPUS)
    assert (report.added, report.duplicates) == (20, 0)
    assert report.passages_per_second > 0
    assert len(index) == 20 and index.vectors.ntotal == 20
    assert encoder.calls == [("document", 20)]
    assert index.index_type == "flat"


def test_vectors_are_stored_under_stable_ids_and_embed_the_title(index: EvidenceIndex) -> None:
    p = by_id("space-1")
    stored = index.vectors.reconstruct(vector_id(p.id))
    with_title = HashEncoder().vector(f"{p.title}: {p.text}")
    assert np.allclose(stored, with_title, atol=1e-6)
    assert not np.allclose(stored, HashEncoder().vector(p.text), atol=1e-3)


def test_embed_title_off_embeds_the_text_alone(encoder: HashEncoder) -> None:
    index = EvidenceIndex(encoder, IndexConfig(embed_title=False))
    index.add(CORPUS)
    p = by_id("space-1")
    assert np.allclose(index.vectors.reconstruct(vector_id(p.id)), encoder.vector(p.text), atol=1e-6)


def test_a_passage_text_finds_itself_first(index: EvidenceIndex) -> None:
    for p in CORPUS:
        assert _ids(index, p.text, mode="dense", k=1) == [p.id]


# -- save and load ----------------------------------------------------------------------------


def test_save_then_load_gives_the_same_results(index: EvidenceIndex, index_dir: Path) -> None:
    index.save(index_dir)
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert len(loaded) == 20
    for query in QUERIES:
        for mode in ("hybrid", "dense", "bm25"):
            assert _results(loaded, query, mode) == _results(index, query, mode)
    assert _leftovers(index_dir) == []


def test_manifest_records_how_the_index_was_built(index: EvidenceIndex, index_dir: Path) -> None:
    returned = index.save(index_dir)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest == returned
    assert manifest["format"] == FORMAT
    assert manifest["encoder"] == {
        "name": "hash-encoder",
        "fingerprint": "hash-256-v1",
        "dim": 256,
        "backend": "hash",
    }
    assert (manifest["count"], manifest["metric"], manifest["index_type"]) == (20, "inner_product", "flat")
    assert manifest["normalized"] is True and manifest["tombstones"] == 0
    assert datetime.fromisoformat(manifest["built_at"]).tzinfo is not None
    assert {"numpy", "faiss-cpu", "bm25s"} <= set(manifest["versions"])
    assert manifest["content_hash"] == index.store.content_digest()
    assert len(manifest["content_hash"]) == 64
    assert manifest["lexical"]["library"] == "bm25s"
    assert manifest["config"]["hnsw_threshold"] == IndexConfig().hnsw_threshold


def test_content_hash_follows_content_not_insertion_order(index: EvidenceIndex) -> None:
    reversed_index = EvidenceIndex(HashEncoder())
    reversed_index.add(reversed(CORPUS))
    assert reversed_index.manifest()["content_hash"] == index.manifest()["content_hash"]
    index.delete(["sport-2"])
    assert index.manifest()["content_hash"] != reversed_index.manifest()["content_hash"]


def test_bm25_settings_reach_the_lexical_index_and_survive_save_load_and_changes(index_dir: Path) -> None:
    config = IndexConfig(bm25_k1=1.5, bm25_b=0.2)
    index = EvidenceIndex(HashEncoder(), config)
    index.add(CORPUS)
    manifest = index.save(index_dir)
    assert (manifest["config"]["bm25_k1"], manifest["config"]["bm25_b"]) == (1.5, 0.2)
    assert (manifest["lexical"]["k1"], manifest["lexical"]["b"]) == (1.5, 0.2)
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert loaded.config == config
    loaded.add([NEW])  # a change rebuilds BM25, which must keep the settings
    assert (loaded.save(index_dir)["lexical"]["k1"], loaded.lexical.b) == (1.5, 0.2)


def test_set_bm25_rebuilds_only_the_lexical_part(index: EvidenceIndex, index_dir: Path) -> None:
    vectors = index.vectors
    with pytest.raises(RetrievalError, match="bm25_b must be between 0 and 1"):
        index.set_bm25(1.0, 3.0)
    index.set_bm25(2.0, 0.1)
    assert index.vectors is vectors and index.lexical.stale
    hits = Retriever(index, SearchSettings(mode="bm25")).search("arctic sea ice record low", k=3)
    assert hits and hits[0].id == "climate-1"
    manifest = index.save(index_dir)
    lexical = manifest["lexical"]
    assert (manifest["config"]["bm25_k1"], lexical["k1"], lexical["b"]) == (2.0, 2.0, 0.1)


def test_length_normalisation_changes_the_lexical_ranking() -> None:
    long_doc = Passage("long", "tide " + " ".join(f"filler{i}" for i in range(60)) + " tide tide")
    short_doc = Passage("short", "tide gauge")
    scores = {}
    for b in (0.0, 1.0):
        index = EvidenceIndex(HashEncoder(), IndexConfig(bm25_b=b))
        index.add([long_doc, short_doc])
        hits = Retriever(index, SearchSettings(mode="bm25")).search("tide", k=2)
        scores[b] = [h.id for h in hits]
    # Without length normalisation three mentions win; with full normalisation the short one does.
    assert scores == {0.0: ["long", "short"], 1.0: ["short", "long"]}


def test_an_index_saved_before_bm25_was_configurable_keeps_its_bm25_settings(
    index: EvidenceIndex, index_dir: Path
) -> None:
    index.lexical = LexicalIndex(k1=1.2, b=0.75)  # what every index used before
    index.save(index_dir)
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["config"]["bm25_k1"], manifest["config"]["bm25_b"]
    manifest_path.write_text(json.dumps(manifest))
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert (loaded.config.bm25_k1, loaded.config.bm25_b) == (1.2, 0.75)
    assert (loaded.lexical.k1, loaded.lexical.b) == (1.2, 0.75)


def test_a_manifest_with_bad_bm25_settings_is_refused_on_load(index: EvidenceIndex, index_dir: Path) -> None:
    index.save(index_dir)
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["bm25_b"] = 7
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexLoadError, match=r"bad index settings \(bm25_b must be between 0 and 1"):
        EvidenceIndex.load(index_dir, HashEncoder())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bm25_b": 1.5}, "bm25_b must be between 0 and 1"),
        ({"bm25_k1": -0.1}, "bm25_k1 must be non-negative"),
        ({"hnsw_threshold": 0}, "hnsw_threshold must be at least 1"),
    ],
)
def test_index_settings_out_of_range_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(RetrievalError, match=message):
        IndexConfig(**settings)


def test_load_keeps_the_build_times(index: EvidenceIndex, index_dir: Path) -> None:
    manifest = index.save(index_dir)
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert (loaded.built_at, loaded.updated_at) == (manifest["built_at"], manifest["updated_at"])


def test_loading_with_an_encoder_of_another_dimension_names_both(
    index: EvidenceIndex, index_dir: Path
) -> None:
    index.save(index_dir)
    with pytest.raises(IndexMismatchError) as info:
        EvidenceIndex.load(index_dir, HashEncoder(dim=128, name="small-hash"))
    message = str(info.value)
    assert "'hash-encoder' (dimension 256)" in message
    assert "'small-hash' has dimension 128" in message


def test_loading_with_retrained_weights_names_both_encoders(index: EvidenceIndex, index_dir: Path) -> None:
    index.save(index_dir)
    retrained = HashEncoder(name="hash-retrained", fingerprint="hash-256-v2")
    with pytest.raises(IndexMismatchError) as info:
        EvidenceIndex.load(index_dir, retrained)
    message = str(info.value)
    assert "'hash-encoder' (weights hash-256-v1)" in message
    assert "'hash-retrained' has weights hash-256-v2" in message
    assert isinstance(info.value, IndexLoadError)


# -- incremental changes ----------------------------------------------------------------------


def test_add_after_load_makes_new_passages_searchable(index: EvidenceIndex, index_dir: Path) -> None:
    index.save(index_dir)
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert "new-1" not in _ids(loaded, "honeybees waggle dance", k=20)
    report = loaded.add([NEW])
    assert (report.added, report.duplicates) == (1, 0)
    for mode in ("hybrid", "dense", "bm25"):
        assert _ids(loaded, "honeybees waggle dance", mode)[0] == "new-1"
    loaded.save(index_dir)
    assert json.loads((index_dir / "manifest.json").read_text())["count"] == 21


def test_add_skips_passages_already_indexed_without_encoding_them(
    index: EvidenceIndex, encoder: HashEncoder
) -> None:
    encoder.calls.clear()
    report = index.add([by_id("health-1"), NEW, NEW, by_id("space-2")])
    assert (report.added, report.duplicates) == (1, 3)
    assert encoder.calls == [("document", 1)]
    assert len(index) == 21 and index.vectors.ntotal == 21


def test_add_of_nothing_new_changes_nothing(index: EvidenceIndex, encoder: HashEncoder) -> None:
    encoder.calls.clear()
    before = index.manifest()["content_hash"]
    report = index.add(CORPUS)
    assert (report.added, report.duplicates) == (0, 20)
    assert encoder.calls == []
    assert index.manifest()["content_hash"] == before


def test_add_refuses_an_id_that_holds_another_text(index: EvidenceIndex) -> None:
    clash = Passage(id="health-1", text="Something else entirely.")
    with pytest.raises(IngestError, match="'health-1' already holds a different text; delete it first"):
        index.add([NEW, clash])
    # The batch is refused whole: nothing of it was indexed.
    assert len(index) == 20
    assert index.store.get_text("health-1") == by_id("health-1").text
    assert index.store.get_text("new-1") is None


def test_add_refuses_an_id_repeated_with_another_text_in_one_batch(encoder: HashEncoder) -> None:
    index = EvidenceIndex(encoder)
    with pytest.raises(IngestError, match="'a' already holds a different text"):
        index.add([Passage(id="a", text="first"), Passage(id="a", text="second")])
    assert len(index) == 0


def test_delete_removes_passages_from_dense_and_bm25_results(index: EvidenceIndex) -> None:
    target = by_id("climate-1")
    assert _ids(index, target.text, "dense")[0] == target.id
    assert _ids(index, target.text, "bm25")[0] == target.id
    assert index.delete([target.id, "health-2", "no-such-id"]) == 2
    assert len(index) == 18 and index.vectors.ntotal == 18
    for mode in ("hybrid", "dense", "bm25"):
        ids = _ids(index, target.text, mode, k=20)
        assert target.id not in ids and "health-2" not in ids
        assert ids, "the other passages are still there"
    assert index.delete([target.id]) == 0


def test_delete_counts_an_id_given_twice_once(index: EvidenceIndex) -> None:
    assert index.delete(["sport-1", "sport-1"]) == 1
    assert len(index) == index.vectors.ntotal == 19


def test_deleted_passages_stay_deleted_after_save_and_load(index: EvidenceIndex, index_dir: Path) -> None:
    index.delete(["climate-1"])
    index.save(index_dir)
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert len(loaded) == 19
    assert "climate-1" not in _ids(loaded, by_id("climate-1").text, k=20)


def test_a_deleted_id_can_be_added_again_with_new_text(index: EvidenceIndex) -> None:
    index.delete(["climate-1"])
    index.add([Passage(id="climate-1", text="Glaciers in the Alps are retreating quickly.")])
    assert _ids(index, "alps glaciers retreating", "dense")[0] == "climate-1"
    assert "climate-1" not in _ids(index, "arctic sea ice record", "bm25")


def test_rebuild_reencodes_with_a_new_encoder(index: EvidenceIndex, index_dir: Path) -> None:
    new_encoder = HashEncoder(dim=128, name="hash-v2", fingerprint="hash-128-v2")
    report = index.rebuild(new_encoder)
    assert report.added == 20
    assert new_encoder.calls == [("document", 20)]
    assert index.vectors.d == 128
    manifest = index.save(index_dir)
    assert manifest["encoder"]["fingerprint"] == "hash-128-v2"
    assert (manifest["encoder"]["name"], manifest["encoder"]["dim"]) == ("hash-v2", 128)
    with pytest.raises(IndexMismatchError):
        EvidenceIndex.load(index_dir, HashEncoder())
    loaded = EvidenceIndex.load(index_dir, HashEncoder(dim=128, name="hash-v2", fingerprint="hash-128-v2"))
    assert _ids(loaded, by_id("history-2").text, "dense")[0] == "history-2"


def test_rebuild_keeps_every_passage_and_its_fields(index: EvidenceIndex) -> None:
    index.rebuild()
    assert len(index) == 20
    stored = {p.id: p for _, p in index.store.iter_all()}
    assert stored == {p.id: p for p in CORPUS}


# -- HNSW -------------------------------------------------------------------------------------


def test_hnsw_is_chosen_at_the_threshold(hnsw_index: EvidenceIndex, index_dir: Path) -> None:
    import faiss

    assert hnsw_index.index_type == "hnsw"
    assert isinstance(faiss.downcast_index(hnsw_index.vectors.index), faiss.IndexHNSWFlat)
    assert hnsw_index.save(index_dir)["index_type"] == "hnsw"


def test_hnsw_finds_what_exact_search_finds(hnsw_index: EvidenceIndex, index: EvidenceIndex) -> None:
    for query in QUERIES:
        exact = _results(index, query, "dense", k=10)
        approx = _results(hnsw_index, query, "dense", k=10)
        assert [r[0] for r in approx] == [r[0] for r in exact]
        assert np.allclose([r[2] for r in approx], [r[2] for r in exact], atol=1e-5)


def test_index_switches_to_hnsw_when_it_grows_past_the_threshold(encoder: HashEncoder) -> None:
    index = EvidenceIndex(encoder, IndexConfig(hnsw_threshold=15))
    index.add(CORPUS[:10])
    assert index.index_type == "flat"
    index.add(CORPUS[10:])
    assert index.index_type == "hnsw"
    assert index.vectors.ntotal == 20
    for p in CORPUS:
        assert _ids(index, p.text, "dense", k=1) == [p.id]


def test_hnsw_delete_hides_passages_behind_tombstones(hnsw_index: EvidenceIndex) -> None:
    gone = ["climate-1", "space-2", "economy-3"]
    assert hnsw_index.delete(gone) == 3
    assert hnsw_index.tombstones == {vector_id(pid) for pid in gone}
    assert hnsw_index.vectors.ntotal == 20, "HNSW keeps the nodes; tombstones hide them"
    assert len(hnsw_index) == 17
    for p in CORPUS:
        for mode in ("hybrid", "dense", "bm25"):
            ids = _ids(hnsw_index, p.text, mode, k=20)
            assert not set(gone) & set(ids)
        if p.id not in gone:
            assert _ids(hnsw_index, p.text, "dense", k=1) == [p.id]
    dense = Retriever(hnsw_index, SearchSettings(mode="dense")).search(
        "sea ice", k=20, filters={"source": "wiki"}
    )
    assert dense and "climate-1" not in [h.id for h in dense]


def test_hnsw_tombstones_survive_save_and_load(hnsw_index: EvidenceIndex, index_dir: Path) -> None:
    hnsw_index.delete(["climate-1"])
    manifest = hnsw_index.save(index_dir)
    assert manifest["tombstones"] == 1 and manifest["count"] == 19
    assert (index_dir / "tombstones.npy").is_file()
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert loaded.index_type == "hnsw"
    assert loaded.tombstones == {vector_id("climate-1")}
    assert "climate-1" not in _ids(loaded, by_id("climate-1").text, "dense", k=20)
    assert _results(loaded, QUERIES[1]) == _results(hnsw_index, QUERIES[1])


def test_hnsw_readding_a_deleted_id_clears_its_tombstone(hnsw_index: EvidenceIndex) -> None:
    original = by_id("climate-1")
    hnsw_index.delete([original.id])
    hnsw_index.add([original])
    assert hnsw_index.tombstones == set()
    assert hnsw_index.vectors.ntotal == len(hnsw_index) == 20
    assert _ids(hnsw_index, original.text, "dense", k=1) == [original.id]
    hits = Retriever(hnsw_index, SearchSettings(mode="dense")).search(original.text, k=20)
    assert [h.id for h in hits].count(original.id) == 1


def test_rebuild_compacts_hnsw_tombstones(hnsw_index: EvidenceIndex) -> None:
    hnsw_index.delete(["climate-1", "space-2"])
    hnsw_index.rebuild()
    assert hnsw_index.tombstones == set()
    assert hnsw_index.vectors.ntotal == len(hnsw_index) == 18
    assert hnsw_index.index_type == "hnsw"


# -- atomic save ------------------------------------------------------------------------------


def _fail(*_: object, **__: object) -> None:
    raise OSError("disk full")


@pytest.mark.parametrize("step", ["faiss.write_index", "PassageStore.save", "LexicalIndex.save"])
def test_a_save_that_fails_midway_leaves_the_previous_index(
    index: EvidenceIndex, index_dir: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    import faiss

    index.save(index_dir)
    old = _results(index, QUERIES[0])
    index.add([NEW])
    owner, name = {
        "faiss.write_index": (faiss, "write_index"),
        "PassageStore.save": (PassageStore, "save"),
        "LexicalIndex.save": (LexicalIndex, "save"),
    }[step]
    monkeypatch.setattr(owner, name, _fail)
    with pytest.raises(OSError, match="disk full"):
        index.save(index_dir)
    monkeypatch.undo()
    assert _leftovers(index_dir) == []
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert len(loaded) == 20
    assert loaded.store.get_text("new-1") is None
    assert _results(loaded, QUERIES[0]) == old


def test_a_save_that_fails_at_the_final_rename_keeps_the_previous_copy(
    index: EvidenceIndex, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.save(index_dir)
    old = _results(index, QUERIES[0])
    index.add([NEW])
    real_rename = Path.rename

    def rename(self: Path, target: Any) -> Any:
        if self.name.startswith(f".{index_dir.name}.tmp-"):
            raise OSError("power cut")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="power cut"):
        index.save(index_dir)
    monkeypatch.undo()
    # The old copy waits beside the target; no temporary directory is left.
    assert not index_dir.exists()
    assert _leftovers(index_dir) == [f".{index_dir.name}.previous"]
    recovered = EvidenceIndex.load(index_dir, HashEncoder())
    assert len(recovered) == 20
    assert _results(recovered, QUERIES[0]) == old
    # The next save completes and cleans up.
    index.save(index_dir)
    assert _leftovers(index_dir) == []
    assert len(EvidenceIndex.load(index_dir, HashEncoder())) == 21


def test_a_save_removes_copies_left_by_dead_writers_only(index: EvidenceIndex, index_dir: Path) -> None:
    index.save(index_dir)
    host = writer_tag().split("-")[0]
    dead_pid = _finished_pid()  # a reaped child's pid: no process has it (unless reused this instant)
    copies = {
        "dead": index_dir.with_name(f".{index_dir.name}.tmp-{host}-{dead_pid}-abc"),
        "live": index_dir.with_name(f".{index_dir.name}.tmp-{host}-{os.getpid()}-def"),
        "other_host": index_dir.with_name(f".{index_dir.name}.tmp-00000000-{dead_pid}-ghi"),
        "untagged_new": index_dir.with_name(f".{index_dir.name}.tmp-jkl"),
        "untagged_old": index_dir.with_name(f".{index_dir.name}.tmp-mno"),
    }
    for path in copies.values():
        path.mkdir()
        (path / "vectors.faiss").write_bytes(b"partial")
    hour_ago = time.time() - 7200
    os.utime(copies["untagged_old"], (hour_ago, hour_ago))

    index.add([NEW])
    index.save(index_dir)

    left = {name for name, path in copies.items() if path.exists()}
    assert left == {"live", "other_host", "untagged_new"}
    assert len(EvidenceIndex.load(index_dir, HashEncoder())) == 21


def _finished_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_load_opens_the_previous_copy_when_the_target_is_missing(
    index: EvidenceIndex, index_dir: Path
) -> None:
    index.save(index_dir)
    index_dir.rename(index_dir.with_name(f".{index_dir.name}.previous"))
    loaded = EvidenceIndex.load(index_dir, HashEncoder())
    assert len(loaded) == 20
    assert EvidenceIndex.read_manifest(index_dir)["count"] == 20


def test_load_prefers_the_previous_copy_over_a_half_written_target(
    index: EvidenceIndex, index_dir: Path
) -> None:
    index.save(index_dir)
    shutil.copytree(index_dir, index_dir.with_name(f".{index_dir.name}.previous"))
    (index_dir / "manifest.json").unlink()
    (index_dir / "vectors.faiss").write_bytes(b"half")
    assert len(EvidenceIndex.load(index_dir, HashEncoder())) == 20
    # Saving over the interrupted state restores a clean layout with the new content.
    index.add([NEW])
    index.save(index_dir)
    assert _leftovers(index_dir) == []
    assert len(EvidenceIndex.load(index_dir, HashEncoder())) == 21


def test_save_replaces_an_earlier_index_in_place(index: EvidenceIndex, index_dir: Path) -> None:
    index.save(index_dir)
    index.delete(["climate-1"])
    index.save(index_dir)
    assert _leftovers(index_dir) == []
    assert len(EvidenceIndex.load(index_dir, HashEncoder())) == 19


# -- load errors ------------------------------------------------------------------------------


def test_loading_a_missing_directory_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(IndexLoadError, match="no such index directory"):
        EvidenceIndex.load(tmp_path / "absent", HashEncoder())


def test_loading_a_directory_that_is_not_an_index_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(IndexLoadError, match=r"not an index directory \(no manifest.json\)"):
        EvidenceIndex.load(tmp_path, HashEncoder())


def _edit_manifest(index_dir: Path, **changes: Any) -> None:
    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del manifest[key]
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: (d / "manifest.json").write_text('{"format": "verifact-'), "corrupt manifest"),
        (lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe\x00"), "corrupt manifest"),
        (lambda d: (d / "manifest.json").write_text("[1, 2]"), r"corrupt manifest \(not a JSON object\)"),
        (lambda d: _edit_manifest(d, format="other/9"), "unknown index format 'other/9'"),
        (lambda d: _edit_manifest(d, count=None), r"corrupt manifest \(missing count\)"),
        (lambda d: _edit_manifest(d, index_type=None), r"corrupt manifest \(missing index_type\)"),
        (lambda d: _edit_manifest(d, count=7), "files disagree"),
        (lambda d: (d / "vectors.faiss").unlink(), "unreadable FAISS index"),
        (lambda d: (d / "vectors.faiss").write_bytes(b"garbage" * 20), "unreadable FAISS index"),
        (lambda d: (d / "passages.sqlite").unlink(), "passage store missing"),
        (lambda d: (d / "passages.sqlite").write_bytes(b"garbage" * 200), "not a readable passage store"),
        (lambda d: shutil.rmtree(d / "bm25"), "unreadable BM25 index"),
        (lambda d: (d / "bm25" / "params.index.json").unlink(), "unreadable BM25 index"),
    ],
    ids=[
        "truncated-manifest",
        "binary-manifest",
        "manifest-not-object",
        "unknown-format",
        "no-count",
        "no-index-type",
        "wrong-count",
        "no-vectors",
        "garbage-vectors",
        "no-passages",
        "garbage-passages",
        "no-bm25",
        "partial-bm25",
    ],
)
def test_damaged_index_fails_with_index_load_error(
    index: EvidenceIndex, index_dir: Path, corrupt: Any, message: str
) -> None:
    index.save(index_dir)
    corrupt(index_dir)
    with pytest.raises(IndexLoadError, match=message):
        EvidenceIndex.load(index_dir, HashEncoder())
