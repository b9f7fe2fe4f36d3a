"""The NLI data builder: project splits, label mapping, titled evidence, de-duplication, no test leakage."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from classifier.data import read_rows
from graph.errors import VerifierError
from graph.nli_data import _check_leakage, build_nli_data, covid_fact_claims, covid_fact_pairs
from graph.nli_records import NLIPair, claim_key, evidence_text, read_claims
from retrieval.climate_fever import split_of

IDS = {s: [str(i) for i in range(200) if split_of(str(i)) == s][:4] for s in ("train", "dev", "test")}


def _evidence(eid: str, text: str, label: str) -> dict[str, Any]:
    article = eid.split(":")[0]
    return {"evidence_id": eid, "evidence": text, "article": article, "evidence_label": label}


def _claim(cid: str, text: str, label: str, evidences: list[dict[str, Any]]) -> dict[str, Any]:
    return {"claim_id": cid, "claim": text, "claim_label": label, "evidences": evidences}


def write_fixture(root: Path) -> Path:
    """A Climate-FEVER file with claims of every split and a COVID-Fact split set, with traps."""
    tr, dv, te = IDS["train"], IDS["dev"], IDS["test"]
    cf = [
        _claim(
            tr[0],
            "Polar bears are dying.",
            "SUPPORTS",
            [
                _evidence("Polar bear:1", 'Bears "starve"\tas ice melts.', "SUPPORTS"),
                _evidence("Polar bear:1", 'Bears "starve"\tas ice melts.', "SUPPORTS"),  # exact repeat
                _evidence("Ice:2", "Ice is cold.", "NOT_ENOUGH_INFO"),
            ],
        ),
        _claim(
            tr[1], "CO2 is plant food", "REFUTES", [_evidence("CO2:3", "CO2 warms the planet.", "REFUTES")]
        ),
        # The same claim as a test claim, with brackets: it must not train anything.
        _claim(tr[2], "Sea level [is] rising", "SUPPORTS", [_evidence("Sea:4", "Seas rise.", "SUPPORTS")]),
        _claim(
            dv[0],
            "Sun drives warming",
            "DISPUTED",
            [
                _evidence("Sun:5", "The sun varies.", "SUPPORTS"),
                _evidence("Sun:6", "Not the sun.", "REFUTES"),
            ],
        ),
        _claim(
            dv[1],
            "Clouds cool",
            "NOT_ENOUGH_INFO",
            [_evidence("Cloud:7", "Clouds exist.", "NOT_ENOUGH_INFO")],
        ),
        _claim(
            te[0], "Sea level is rising.", "SUPPORTS", [_evidence("Sea:8", "Seas rise fast.", "SUPPORTS")]
        ),
        _claim(te[1], "Ice grows", "REFUTES", [_evidence("Ice:9", "Ice shrinks.", "REFUTES")]),
    ]
    (root / "climate_fever").mkdir(parents=True)
    (root / "climate_fever" / "climate-fever.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cf))
    covid = {
        "train": [
            (1, "Masks reduce infection", "SUPPORTED", ["Masks help.", "Masks filter droplets."]),
            (2, "Masks increase infection", "REFUTED", ["Masks help.", "Masks filter droplets."]),
            (3, "Vaccine works", "SUPPORTED", ["Trial shows efficacy."]),  # a test claim without its stop
        ],
        "dev": [(4, "Distancing slows spread", "SUPPORTED", ["Fewer contacts, fewer cases."])],
        "test": [(5, "Vaccine works.", "SUPPORTED", ["Trial shows efficacy."])],
    }
    (root / "covid_fact").mkdir()
    for split, rows in covid.items():
        lines = [
            json.dumps(
                {
                    "line": n,
                    "claim": c,
                    "label": lab,
                    "evidence": ev,
                    "evidence_ids": [f"cf{n}{k}" for k in range(len(ev))],
                }
            )
            for n, c, lab, ev in rows
        ]
        (root / "covid_fact" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def built(tmp_path: Path) -> dict[str, Any]:
    data = write_fixture(tmp_path / "data")
    out = tmp_path / "nli"
    report = build_nli_data(data, out)
    files = {
        name: read_rows(out / name) for name in ("train.tsv", "dev.tsv", "cf_test.tsv", "covid_test.tsv")
    }
    return {"data": data, "out": out, "report": report, "files": files}


def test_pairs_follow_the_project_split(built: dict[str, Any]) -> None:
    for name, split in (("train.tsv", "train"), ("dev.tsv", "dev"), ("cf_test.tsv", "test")):
        cf_ids = {r["claim_id"] for r in built["files"][name] if r["source"] == "climate_fever"}
        assert cf_ids and all(split_of(cid) == split for cid in cf_ids), name
    assert {r["claim_id"] for r in built["files"]["covid_test.tsv"]} == {"covid:5"}
    assert {r["claim_id"] for r in built["files"]["dev.tsv"] if r["source"] == "covid_fact"} == {"covid:4"}


def test_labels_are_mapped_per_evidence_and_titles_prefixed(built: dict[str, Any]) -> None:
    train = built["files"]["train.tsv"]
    assert list(train[0]) == ["claim", "evidence", "label", "source", "claim_id"]
    rows = {(r["claim"], r["evidence"]): r["label"] for r in train}
    # Tabs and quotes survive the TSV round trip.
    assert rows[("Polar bears are dying.", 'Polar bear: Bears "starve"\tas ice melts.')] == "SUPPORTED"
    assert rows[("Polar bears are dying.", "Ice: Ice is cold.")] == "NOT_ENOUGH_INFO"
    assert rows[("CO2 is plant food", "CO2: CO2 warms the planet.")] == "REFUTED"
    assert {r["label"] for r in built["files"]["dev.tsv"] if r["claim"] == "Sun drives warming"} == {
        "SUPPORTED",
        "REFUTED",
    }
    assert evidence_text("Polar bear", "x") == "Polar bear: x" and evidence_text("", "x") == "x"


def test_covid_pairs_join_the_evidence_under_the_claim_label(built: dict[str, Any]) -> None:
    covid = [r for r in built["files"]["train.tsv"] if r["source"] == "covid_fact"]
    assert [(r["claim"], r["evidence"], r["label"]) for r in covid] == [
        ("Masks reduce infection", "Masks help. Masks filter droplets.", "SUPPORTED"),
        ("Masks increase infection", "Masks help. Masks filter droplets.", "REFUTED"),
    ]
    per_sentence = covid_fact_pairs(covid_fact_claims(built["data"], "train"), "sentences")
    assert [p.evidence for p in per_sentence[:2]] == ["Masks help.", "Masks filter droplets."]
    assert {p.label for p in per_sentence[:2]} == {"SUPPORTED"}


def test_repeats_are_written_once_and_counted(built: dict[str, Any]) -> None:
    train = built["files"]["train.tsv"]
    assert sum(r["evidence"].startswith("Polar bear:") for r in train) == 1
    assert built["report"]["removed"]["train.tsv"]["duplicates"] == 1


def test_no_test_claim_reaches_train_or_dev(built: dict[str, Any]) -> None:
    test_keys = {claim_key(r["claim"]) for n in ("cf_test.tsv", "covid_test.tsv") for r in built["files"][n]}
    for name in ("train.tsv", "dev.tsv"):
        assert not {claim_key(r["claim"]) for r in built["files"][name]} & test_keys, name
    assert (
        built["report"]["removed"]["train.tsv"]["claim_in_test"] == 2
    )  # "Sea level [is] rising", "Vaccine works"
    leakage = built["report"]["leakage"]
    assert (
        leakage["train_claims_in_test"],
        leakage["dev_claims_in_test"],
        leakage["train_claims_in_dev"],
    ) == (0, 0, 0)
    assert claim_key("Sea level [is] rising") == claim_key("sea level is rising.")


def test_a_leak_raises(built: dict[str, Any]) -> None:
    leaked = {"train.tsv": [NLIPair("Ice grows", "x", "REFUTED", "s", "1")], "dev.tsv": []}
    claims: dict[str, Any] = {"cf_claims_dev.jsonl": [], "covid_claims_dev.jsonl": []}
    with pytest.raises(VerifierError, match="leaked"):
        _check_leakage(leaked, claims, {claim_key("Ice grows")}, set())


def test_report_counts_match_the_files(built: dict[str, Any]) -> None:
    report, files = built["report"], built["files"]
    for name, rows in files.items():
        assert report["files"][name]["rows"] == len(rows)
        by_source: dict[str, dict[str, int]] = {}
        for r in rows:
            by_source.setdefault(r["source"], {}).setdefault(r["label"], 0)
            by_source[r["source"]][r["label"]] += 1
        assert report["files"][name]["by_source"] == by_source, name
    assert report["counts"]["climate_fever"]["train"] == {"NOT_ENOUGH_INFO": 1, "REFUTED": 1, "SUPPORTED": 1}
    assert report["counts"]["covid_fact"]["test"] == {"SUPPORTED": 1}
    assert json.loads((built["out"] / "report.json").read_text()) == json.loads(json.dumps(report))


def test_claim_files_keep_disputed_and_evidence_labels(built: dict[str, Any]) -> None:
    dev = read_claims(built["out"] / "cf_claims_dev.jsonl")
    assert [(c.claim_id, c.claim_label) for c in dev] == [
        (IDS["dev"][0], "DISPUTED"),
        (IDS["dev"][1], "NOT_ENOUGH_INFO"),
    ]
    assert [(e.id, e.title, e.text, e.label) for e in dev[0].evidences] == [
        ("Sun:5", "Sun", "The sun varies.", "SUPPORTED"),
        ("Sun:6", "Sun", "Not the sun.", "REFUTED"),
    ]
    test = read_claims(built["out"] / "covid_claims_test.jsonl")
    assert [(c.claim_id, [e.id for e in c.evidences], c.evidences[0].label) for c in test] == [
        ("covid:5", ["cf50"], None)
    ]
    assert built["report"]["files"]["cf_claims_test.jsonl"] == {
        "claims": 2,
        "by_label": {"REFUTED": 1, "SUPPORTED": 1},
    }


def test_the_cli_reads_the_data_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_fixture(tmp_path / "data")
    monkeypatch.setenv("VERIFACT_DATA_DIR", str(data))
    assert main(["data", "nli", "--out", str(tmp_path / "out"), "--covid-pairs", "sentences"]) == 0
    assert "train.tsv" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["covid_pairs"] == "sentences"
    with (tmp_path / "out" / "train.tsv").open(newline="") as fh:
        assert sum(1 for r in csv.DictReader(fh, delimiter="\t") if r["source"] == "covid_fact") == 4


def test_the_cli_reports_missing_data_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "nli", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "climate_fever" in capsys.readouterr().err
