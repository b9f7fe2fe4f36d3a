"""The verifier data builder on a tiny copy of the shared data: sources, edits, negatives, no leaks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from classifier.data import read_rows
from graph.errors import VerifierError
from graph.nli_records import claim_key
from graph.verifier_data import VerifierDataConfig, build_verifier_data
from graph.verifier_negatives import NegativeGuard, TrainClaim, norm, why_not_negative
from retrieval.climate_fever import split_of
from retrieval.index import EvidenceIndex
from retrieval.retriever import Retriever
from retrieval.types import Passage
from tests.fakes import HashEncoder

IDS = {s: [str(i) for i in range(100) if split_of(str(i)) == s][:8] for s in ("train", "dev", "test")}
EVIDENCE_LABELS = ("SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO")


def _cf_claim(cid: str, text: str, label: str, evidence: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A Climate-FEVER line: evidence is (id "Article:n", sentence, label)."""
    return {
        "claim_id": cid,
        "claim": text,
        "claim_label": label,
        "evidences": [
            {
                "evidence_id": eid,
                "evidence_label": lab,
                "article": eid.split(":")[0],
                "evidence": sentence,
                "entropy": 0.0,
                "votes": [lab, lab, None, None, None],
            }
            for eid, sentence, lab in evidence
        ],
    }


CF = [
    (
        "train",
        0,
        "Global temperatures have risen 1.1 degrees since 1880.",
        "SUPPORTS",
        [
            ("Global warming:1", "Global surface temperature has risen by 1.1 °C since 1880.", "SUPPORTS"),
            (
                "Global warming:2",
                "Warming is unevenly distributed across the regions of the world.",
                "NOT_ENOUGH_INFO",
            ),
        ],
    ),
    (
        "train",
        1,
        "Arctic sea ice is declining.",
        "SUPPORTS",
        [("Sea ice:3", "Arctic sea ice extent has been declining for several decades now.", "SUPPORTS")],
    ),
    (
        "train",
        2,
        "The IPCC says humans cause warming.",
        "SUPPORTS",
        [("IPCC:4", "The IPCC concluded that humans are the dominant cause of recent warming.", "SUPPORTS")],
    ),
    (
        "train",
        3,
        "CO2 is only plant food and harmless.",
        "REFUTES",
        [
            (
                "Carbon dioxide:5",
                "Carbon dioxide is a greenhouse gas that traps heat in the atmosphere.",
                "REFUTES",
            )
        ],
    ),
    (
        "train",
        4,
        "Shrinking glaciers everywhere on the planet",
        "SUPPORTS",
        [
            (
                "Glacier:6",
                "Most glaciers on the planet have been retreating during the last century.",
                "SUPPORTS",
            )
        ],
    ),
    (
        "train",
        6,
        "China emits more CO2 than the United States.",
        "SUPPORTS",
        [("China:11", "China is the largest emitter of CO2, well ahead of the United States.", "SUPPORTS")],
    ),
    # The same claim as a test claim, without its full stop: it must not train anything.
    (
        "train",
        5,
        "Sea level is rising",
        "SUPPORTS",
        [("Sea level:7", "Sea level rose by 20 cm in a century.", "SUPPORTS")],
    ),
    (
        "dev",
        0,
        "Solar activity drives the recent warming.",
        "REFUTES",
        [("Sun:8", "Solar output has been flat while temperatures climbed steadily.", "REFUTES")],
    ),
    (
        "test",
        0,
        "Sea level is rising.",
        "SUPPORTS",
        [("Sea level:9", "Global mean sea level has risen steadily since the 1990s.", "SUPPORTS")],
    ),
    # What the antonym edit of train claim 4 makes: it must be dropped, not trained on.
    (
        "test",
        1,
        "Growing glaciers everywhere on the planet",
        "REFUTES",
        [("Glacier:10", "Glaciers keep losing mass in almost every mountain range.", "REFUTES")],
    ),
]
COVID = {
    "train": [
        (
            1,
            "Masks reduce infection among the general population",
            "SUPPORTED",
            ["Mask use is likely to decrease viral exposure and infection risk on a population level."],
        ),
        (
            2,
            "Masks increase infection among the general population",
            "REFUTED",
            ["Mask use is likely to decrease viral exposure and infection risk on a population level."],
        ),
        (
            3,
            "Vaccine trial shows strong protection",
            "SUPPORTED",
            ["The phase 3 trial showed 95 percent efficacy against disease."],
        ),
        (
            6,
            "Remdesivir shortens recovery in hospital patients",
            "SUPPORTED",
            ["Patients given remdesivir recovered in 11 days on average, versus 15 on placebo, NIH said."],
        ),
    ],
    "dev": [
        (
            4,
            "Distancing slows the spread of the virus",
            "SUPPORTED",
            ["Fewer contacts between people mean fewer cases."],
        )
    ],
    "test": [
        (
            5,
            "Vaccine trial shows strong protection.",
            "SUPPORTED",
            ["The phase 3 trial showed 95 percent efficacy against disease."],
        )
    ],
}
TITLE = "(meta data) TITLE: "
WICE_DEV = [
    (
        "dev001",
        "supported",
        "Arnold joined Video Store Magazine in 1991.",
        [[2], [2, 3]],
        [
            TITLE + "About Us - Media Play News",
            "Skip to content",
            "He joined Video Store Magazine, the trade weekly, in 1991.",
            "Arnold has covered the home entertainment industry for three decades.",
            "The magazine is published every month in print and online editions.",
        ],
    ),
    (
        "dev002",
        "partially_supported",
        "The band's third album was released on November 2, 2004, in Ohio.",
        [[1]],
        [
            TITLE + "Emotive review",
            "Emotive hits stores on Election Day, November 2, 2004.",
            "Reviewers in Germany praised the record's cover songs and its production values.",
        ],
    ),
    (
        "dev003",
        "not_supported",
        "The library holds over 260,000 volumes, a regional record.",
        [[]],
        [
            TITLE + "Tozzer Library",
            "The library was founded in 1866 as part of the museum.",
            "Its reading room is open to visiting researchers on weekdays.",
        ],
    ),
    # The same claim as a WiCE test claim: kept out of train.
    (
        "dev004",
        "supported",
        "Wellington became the capital of New Zealand in 1865.",
        [[1]],
        [TITLE + "Capital", "Parliament first sat in Wellington in 1865, making it the capital."],
    ),
]
WICE_TEST = [
    (
        "test001",
        "supported",
        "Wellington became the capital of New Zealand in 1865.",
        [[1]],
        [TITLE + "Held out", "This test page sentence must never be a negative for anything."],
    )
]


def _wice_line(wid: str, label: str, claim: str, sets: list[list[int]], evidence: list[str]) -> str:
    meta = {"id": wid, "claim_title": "T", "claim_section": "S", "claim_context": "C"}
    return json.dumps(
        {"label": label, "supporting_sentences": sets, "claim": claim, "evidence": evidence, "meta": meta}
    )


def write_fixture(root: Path) -> Path:
    """A data folder shaped like ../shared/data: Climate-FEVER, COVID-Fact splits and WiCE dev/test."""
    (root / "climate_fever").mkdir(parents=True)
    lines = [_cf_claim(IDS[split][k], text, label, ev) for split, k, text, label, ev in CF]
    (root / "climate_fever" / "climate-fever.jsonl").write_text("".join(json.dumps(c) + "\n" for c in lines))
    corpus = sorted({(eid, sentence) for *_, ev in CF for eid, sentence, _ in ev})
    (root / "climate_fever" / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": i, "article": i.split(":")[0], "text": t}) + "\n" for i, t in corpus)
    )
    (root / "covid_fact").mkdir()
    for split, rows in COVID.items():
        out = [
            {
                "line": n,
                "claim": c,
                "label": lab,
                "evidence": ev,
                "evidence_ids": [f"cf{n:03d}{k}" for k in range(len(ev))],
                "gold_source": "https://example.org",
                "flair": "Preprint",
            }
            for n, c, lab, ev in rows
        ]
        (root / "covid_fact" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    (root / "wice").mkdir()
    for name, rows in (("claim_dev.jsonl", WICE_DEV), ("claim_test.jsonl", WICE_TEST)):
        (root / "wice" / name).write_text("".join(_wice_line(*r) + "\n" for r in rows))
    return root


def fixture_passages() -> list[Passage]:
    """Every passage of the fixture, named as bench.retrieval_data names them in the padded index."""
    passages = [Passage(eid, s, eid.split(":")[0]) for *_, ev in CF for eid, s, _ in ev]
    passages += [
        Passage(f"cf{n:03d}{k}", s)
        for rows in COVID.values()
        for n, _, _, ev in rows
        for k, s in enumerate(ev)
    ]
    for split, rows in (("dev", WICE_DEV), ("test", WICE_TEST)):
        for wid, _, _, _, sentences in rows:
            title = sentences[0].removeprefix(TITLE)
            passages += [Passage(f"wice-{split}-{wid}:{i}", s, title) for i, s in enumerate(sentences) if i]
    return list({p.id: p for p in passages}.values())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    index = EvidenceIndex(HashEncoder())
    index.add(fixture_passages())
    return Retriever(index)


@pytest.fixture(scope="module")
def built(data: Path, retriever: Retriever, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("out")
    cfg = VerifierDataConfig(
        refuted_ratio=None, max_label_share=None, hard_per_claim=2, wice_other_per_claim=1
    )
    report = build_verifier_data(data, out, cfg, retriever)
    return {"out": out, "report": report, "train": read_rows(out / "train.tsv")}


def _gold() -> dict[str, set[str]]:
    """Claim id -> its gold evidence texts, as `norm` gives them."""
    gold: dict[str, set[str]] = {IDS[s][k]: {norm(t) for _, t, _ in ev} for s, k, _, _, ev in CF}
    gold.update({f"covid:{n}": {norm(t) for t in ev} for rows in COVID.values() for n, _, _, ev in rows})
    gold.update({f"wice:{w}": {norm(t) for t in ev} for w, *_, ev in WICE_DEV})
    return gold


def _held_out_texts() -> set[str]:
    texts = {norm(t) for s, _, _, _, ev in CF if s != "train" for _, t, _ in ev}
    texts |= {norm(t) for split in ("dev", "test") for *_, ev in COVID[split] for t in ev}
    return texts | {norm(t) for *_, ev in WICE_TEST for t in ev[1:]}


def test_wice_dev_trains_with_its_labels_mapped_and_dev_stays_as_nli_data_writes_it(
    built: dict[str, Any],
) -> None:
    wice = [r for r in built["train"] if r["source"] == "wice" and r["augmentation"] == "none"]
    assert sorted((r["claim_id"], r["label"]) for r in wice) == [
        ("wice:dev001", "SUPPORTED"),
        ("wice:dev001", "SUPPORTED"),
        ("wice:dev002", "NOT_ENOUGH_INFO"),  # partially supported: the set backs part of the claim
    ]
    assert "About Us - Media Play News: He joined Video Store Magazine" in wice[0]["evidence"]
    others = [r for r in built["train"] if r["augmentation"] == "other_sentence"]
    assert {r["label"] for r in others} == {"NOT_ENOUGH_INFO"}
    assert {r["claim_id"] for r in others} == {"wice:dev001", "wice:dev002", "wice:dev003"}
    dev = read_rows(built["out"] / "dev.tsv")
    assert list(dev[0]) == ["claim", "evidence", "label", "source", "claim_id"]
    assert {r["source"] for r in dev} == {"climate_fever", "covid_fact"}
    assert list(built["train"][0]) == ["claim", "evidence", "label", "source", "claim_id", "augmentation"]
    for name in ("cf_claims_dev.jsonl", "covid_claims_test.jsonl", "cf_test.tsv", "covid_test.tsv"):
        assert (built["out"] / name).exists(), name


def test_every_written_edit_is_refuted_against_its_original_evidence(built: dict[str, Any]) -> None:
    from graph.counterfactual import ANTONYMS, single_negation_change

    originals = {
        (r["claim_id"], r["evidence"]): r["claim"]
        for r in built["train"]
        if r["augmentation"] == "none" and r["label"] == "SUPPORTED"
    }
    edits = [r for r in built["train"] if r["augmentation"] in ("negation", "number", "antonym", "entity")]
    assert {r["augmentation"] for r in edits} == {"negation", "number", "antonym", "entity"}
    for r in edits:
        kind, before = r["augmentation"], originals[(r["claim_id"].split("~")[0], r["evidence"])]
        assert r["label"] == "REFUTED" and r["claim_id"].endswith("~" + kind)
        old, new = before.split(), r["claim"].split()
        changed = [(a, b) for a, b in zip(old, new, strict=False) if a != b]
        if kind == "negation":
            assert single_negation_change(before, r["claim"])
        elif kind == "antonym":
            assert len(old) == len(new) and len(changed) == 1
            assert ANTONYMS[changed[0][0].lower().strip(".,")] == changed[0][1].lower().strip(".,")
        elif kind == "number":
            assert len(changed) == 1 and changed[0][0].strip(".,") in r["evidence"]
            assert changed[0][1].strip(".,") not in r["evidence"]
        else:
            assert before != r["claim"]
            assert any(w.strip(".,") in r["evidence"] for w, _ in changed)
            assert not any(w.strip(".,") in r["evidence"] for _, w in changed)


def test_no_test_claim_is_ever_trained_on(built: dict[str, Any]) -> None:
    test_claims = [text for s, _, text, _, _ in CF if s == "test"]
    test_claims += [c for _, c, _, _ in COVID["test"]] + [c for _, _, c, _, _ in WICE_TEST]
    train = {claim_key(r["claim"]) for r in built["train"]}
    assert not train & {claim_key(c) for c in test_claims}
    removed = built["report"]["removed"]
    assert (
        removed["claim_in_test"]["antonym"] == 1
    )  # "Shrinking glaciers" -> the test claim "Growing glaciers"
    assert removed["claim_in_test"]["wice_supported"] == 1  # a WiCE dev claim that is also a test claim
    leakage = built["report"]["leakage"]
    assert (leakage["train_claims_in_test"], leakage["train_claims_in_dev"]) == (0, 0)


def test_negatives_are_never_gold_same_article_or_held_out(built: dict[str, Any]) -> None:
    gold, held_out = _gold(), _held_out_texts()
    by_kind = Counter(r["augmentation"] for r in built["train"])
    assert by_kind["hard_negative"] > 0 and by_kind["easy_negative"] > 0
    for r in built["train"]:
        if r["augmentation"] not in ("hard_negative", "easy_negative"):
            continue
        assert r["label"] == "NOT_ENOUGH_INFO"
        text = norm(r["evidence"].split(": ", 1)[-1])
        assert text not in gold[r["claim_id"]] and norm(r["evidence"]) not in gold[r["claim_id"]]
        assert text not in held_out and norm(r["evidence"]) not in held_out
        if r["claim_id"].startswith("wice:"):
            title = next(ev[0].removeprefix(TITLE) for w, *_, ev in WICE_DEV if f"wice:{w}" == r["claim_id"])
            assert not r["evidence"].startswith(title + ": ")


def test_each_negative_rule_turns_a_passage_down() -> None:
    claim = TrainClaim(
        "c1",
        "Polar bears are dying",
        "climate_fever",
        frozenset({"Bear:1"}),
        frozenset({norm("Bears starve as ice melts.")}),
        frozenset({"Bear"}),
    )
    guard = NegativeGuard(
        frozenset({"Sea:9"}),
        frozenset({norm("A test claim's evidence sentence here.")}),
        {norm("Polar bear numbers fall as sea ice melts."): [frozenset({"polar", "bears", "dying", "fast"})]},
    )
    cases = [
        (Passage("Bear:1", "anything at all, long enough"), "gold_evidence"),
        (Passage("Other:2", "bears  STARVE as ice melts."), "gold_evidence"),
        (Passage("Bear:7", "Another sentence of the same article."), "same_article"),
        (Passage("x", "A sentence with the article's title.", "Bear"), "same_article"),
        (Passage("Sea:9", "A held-out passage id, long enough."), "held_out_passage"),
        (Passage("wice-test-t1:3", "A sentence from a WiCE test page."), "held_out_passage"),
        (Passage("y", "A test claim's evidence sentence here."), "held_out_passage"),
        (Passage("z", "Polar bear numbers fall as sea ice melts."), "evidence_of_similar_claim"),
        (Passage("w", "Too short."), "length"),
        (Passage("v", "Volcanoes emit far less CO2 than people do."), None),
    ]
    for passage, reason in cases:
        assert why_not_negative(passage, claim, guard) == reason, passage


def test_report_counts_add_up(built: dict[str, Any]) -> None:
    report, rows = built["report"], built["train"]
    train = report["train"]
    assert train["rows"] == len(rows) == sum(train["by_label"].values())
    assert train["by_label"] == {k: sum(1 for r in rows if r["label"] == k) for k in train["by_label"]}
    assert sum(sum(c.values()) for c in train["by_source"].values()) == len(rows)
    assert sum(o["written"] for o in report["origins"].values()) == len(rows)
    removed_by_origin: Counter[str] = Counter()
    for reason, by_origin in report["removed"].items():
        if reason != "conflicting_duplicates":
            removed_by_origin.update(by_origin)
    for origin, counts in report["origins"].items():
        assert counts["made"] == counts["written"] + removed_by_origin[origin], origin
    for kind, e in report["augmentation"].items():
        assert e["tried"] == e["passed"] + sum(e["dropped"].values()), kind
        assert e["passed"] == e["not_selected"] + e["made"], kind
        assert e["written"] == sum(1 for r in rows if r["augmentation"] == kind), kind
    assert sum(report["not_enough_info"].values()) == train["by_label"]["NOT_ENOUGH_INFO"]
    assert report["negatives"]["hard_negative"]["made"] == report["origins"]["hard_negative"]["made"]
    assert abs(sum(train["label_shares"].values()) - 1) < 1e-3
    assert json.loads((built["out"] / "report.json").read_text()) == json.loads(json.dumps(report))


def test_a_seed_gives_the_same_files(data: Path, retriever: Retriever, tmp_path: Path) -> None:
    def build(seed: int, name: str) -> str:
        build_verifier_data(data, tmp_path / name, VerifierDataConfig(seed=seed), retriever)
        return (tmp_path / name / "train.tsv").read_text()

    first = build(7, "a")
    assert build(7, "b") == first
    assert build(8, "c") != first


def test_the_refuted_cap_and_the_label_share_hold(data: Path, tmp_path: Path) -> None:
    report = build_verifier_data(data, tmp_path / "none", VerifierDataConfig(refuted_ratio=0))
    assert sum(e["made"] for e in report["augmentation"].values()) == 0
    report = build_verifier_data(
        data, tmp_path / "capped", VerifierDataConfig(refuted_ratio=1.0, max_label_share=0.4)
    )
    cf = report["train"]["by_source"]["climate_fever"]
    assert 0 < cf["REFUTED"] <= cf["SUPPORTED"]
    assert max(report["train"]["label_shares"].values()) <= 0.4
    dropped = report["removed"]["label_balance"]
    assert dropped and set(dropped) <= {"easy_negative", "hard_negative", "other_sentence"}


def test_length_filters_drop_and_count(data: Path, tmp_path: Path) -> None:
    cfg = VerifierDataConfig(min_claim_chars=40, max_evidence_chars=70)
    report = build_verifier_data(data, tmp_path / "out", cfg)
    rows = read_rows(tmp_path / "out" / "train.tsv")
    assert all(len(r["claim"]) >= 40 and len(r["evidence"]) <= 70 for r in rows)
    assert report["removed"]["claim_too_short"] and report["removed"]["evidence_too_long"]


def test_bad_settings_raise(data: Path, tmp_path: Path) -> None:
    with pytest.raises(VerifierError, match="max_label_share"):
        build_verifier_data(data, tmp_path, VerifierDataConfig(max_label_share=0.2))
    with pytest.raises(VerifierError, match="refuted_ratio"):
        build_verifier_data(data, tmp_path, VerifierDataConfig(refuted_ratio=-1))


def test_the_cli_runs_end_to_end_with_an_index_on_disk(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index = EvidenceIndex(HashEncoder())
    index.add(fixture_passages())
    index.save(tmp_path / "index")
    # The index names the hash encoder; the CLI loads what the manifest names.
    monkeypatch.setattr("retrieval.encoder.load_encoder", lambda name, *a, **k: HashEncoder())
    out = tmp_path / "out"
    argv = [
        "data",
        "verifier",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--index",
        str(tmp_path / "index"),
    ]
    assert main([*argv, "--seed", "3", "--refuted-ratio", "-1", "--max-label-share", "1"]) == 0
    shown = capsys.readouterr().out
    assert "SUPPORTED" in shown and "negation" in shown and "test claims, none in train or dev" in shown
    report = json.loads((out / "report.json").read_text())
    assert (
        report["hard_negatives"]
        and report["config"]["seed"] == 3
        and report["config"]["refuted_ratio"] is None
    )
    assert any(r["augmentation"] == "hard_negative" for r in read_rows(out / "train.tsv"))

    assert main([*argv, "--no-hard-negatives"]) == 0
    assert "hard negatives: skipped (--no-hard-negatives)" in capsys.readouterr().out
    assert not any(r["augmentation"] == "hard_negative" for r in read_rows(out / "train.tsv"))
    assert main([*argv, "--max-label-share", "0.1"]) == 2
    assert "max_label_share" in capsys.readouterr().err
