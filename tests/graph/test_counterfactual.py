"""Counterfactual edit rules: each kept when the meaning changes, dropped when its check fails."""

from __future__ import annotations

import random

import pytest

from graph.counterfactual import (
    ANTONYMS,
    Edit,
    Rejected,
    change_number,
    negate,
    select_edits,
    single_negation_change,
    swap_antonym,
)
from graph.counterfactual_entities import EntityPool, find_entities, swap_entity


def rng() -> random.Random:
    """A fresh seeded generator, so each call site is reproducible."""
    return random.Random(0)


@pytest.mark.parametrize(
    ("claim", "edited"),
    [
        ("Sea level is rising.", "Sea level is not rising."),
        ("Global temperatures have risen since 1880", "Global temperatures have not risen since 1880"),
        ("Masks reduce infection", "Masks do not reduce infection"),
        ("CO2 causes global warming", "CO2 does not cause global warming"),
        ("Coral can recover", "Coral cannot recover"),
        ("The vaccine does not work", "The vaccine does work"),
        ("Polar bears can't survive", "Polar bears can survive"),
        ("There is no evidence of warming", "There is some evidence of warming"),
        ("It has never been warmer", "It has been warmer"),
        ("Not all scientists agree", "All scientists agree"),
    ],
)
def test_negation_adds_or_removes_exactly_one_negation(claim: str, edited: str) -> None:
    outcome = negate(claim)
    assert isinstance(outcome, Edit) and outcome.claim == edited
    assert single_negation_change(claim, edited)


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ("Arctic ice may recover", "hedged_modal"),
        ("Arctic ice may not recover", "hedged_modal"),
        ("It is not true that ice is not melting", "several_negations"),
        ("Not only CO2 matters", "fixed_phrase"),
    ],
)
def test_negation_is_dropped_where_it_would_not_contradict(claim: str, reason: str) -> None:
    assert negate(claim) == Rejected("negation", reason)


def test_negation_leaves_claims_without_a_verb_it_knows() -> None:
    assert negate("A sharp rise in sea levels") is None
    assert negate("Record heat across Europe") is None
    assert negate("A cat owned by a covid-19affected patient") is None  # "affected" is inside a word


def test_the_negation_check_refuses_anything_but_one_negation() -> None:
    assert not single_negation_change("X is big", "X is not small")
    assert not single_negation_change("X is big", "X is big")
    assert not single_negation_change("X is big", "X is not never big")
    assert single_negation_change("Masks reduce it", "Masks do not reduce it")
    assert not single_negation_change("Masks reduce it", "Masks do not increase it")


def test_a_number_stated_in_the_evidence_is_changed_to_one_it_does_not_state() -> None:
    evidence = "Global surface temperature rose by 1.1 °C, and 2,000 stations recorded it."
    for seed in range(20):
        outcome = change_number(
            "Temperatures rose 1.1 degrees at 2,000 stations", evidence, random.Random(seed)
        )
        assert isinstance(outcome, Edit) and outcome.kind == "number"
        assert outcome.before in ("1.1", "2,000") and outcome.after not in evidence
        if outcome.before == "2,000":
            assert outcome.after in ("4,000", "6,000", "20,000", "1,000", "200")
        else:
            assert len(outcome.after.split(".")[1]) == 1  # decimals kept


def test_years_move_by_a_few_years_and_months_change() -> None:
    outcome = change_number("Ice hit a low in 2012", "The 2012 minimum was a record.", rng())
    assert isinstance(outcome, Edit) and 2 <= abs(int(outcome.after) - 2012) <= 10
    outcome = change_number("Released in April", "It came out in April.", rng())
    assert isinstance(outcome, Edit) and outcome.after != "April" and outcome.after[0].isupper()
    outcome = change_number("Three studies agree", "three studies were run", rng())
    assert isinstance(outcome, Edit) and outcome.claim.split()[0] not in ("Three", "three")


def test_a_number_missing_from_the_evidence_drops_the_edit() -> None:
    assert change_number("Seas rose 20 cm", "Seas are rising.", rng()) == Rejected(
        "number", "number_not_in_evidence"
    )


def test_numbers_inside_names_are_not_numbers() -> None:
    assert change_number("COVID-19 spreads through CO2-rich air", "COVID-19 19 2", rng()) is None


def test_antonyms_swap_one_listed_word_and_keep_its_case() -> None:
    outcome = swap_antonym("Rising seas threaten cities", rng())
    assert outcome == Edit("antonym", "Falling seas threaten cities", "Rising", "Falling")
    assert swap_antonym("Arctic ice is thinner", rng()) in (
        Edit("antonym", "Antarctic ice is thinner", "Arctic", "Antarctic"),
        Edit("antonym", "Arctic ice is thicker", "thinner", "thicker"),
    )
    assert ANTONYMS["increase"] == "decrease" and ANTONYMS["decrease"] == "increase"
    assert len(ANTONYMS) >= 160  # about 80 hand-written pairs, both ways


def test_an_antonym_already_in_the_claim_drops_the_edit() -> None:
    assert swap_antonym("Sea levels rise and fall", rng()) == Rejected("antonym", "antonym_already_in_claim")
    assert swap_antonym("Sea levels are stable", rng()) is not None
    assert swap_antonym("Penguins eat fish", rng()) is None


POOL = EntityPool(
    [
        "China and Germany signed the deal; NASA and NOAA agree.",
        "The World Health Organization met with researchers from the University of Oxford last week.",
        "Steve McIntyre wrote to Michael Mann.",
    ]
)


def test_the_pool_sorts_entities_by_kind() -> None:
    assert POOL.by_kind["country"] == ["China", "Germany"]
    assert POOL.by_kind["organisation"] == [
        "NASA",
        "NOAA",
        "University of Oxford",
        "World Health Organization",
    ]
    assert POOL.by_kind["person"] == ["Michael Mann", "Steve McIntyre"]
    assert [e[2:] for e in find_entities("In June the U.S. said")] == [("U.S.", "country")]


def test_an_entity_named_in_the_evidence_is_swapped_for_one_it_does_not_name() -> None:
    for seed in range(10):
        outcome = swap_entity(
            "China emits the most", "China: the largest emitter, ahead of Germany.", POOL, random.Random(seed)
        )
        # Germany is in the evidence, so the only country left is no choice: the swap is dropped.
        assert outcome == Rejected("entity", "no_replacement")
    outcome = swap_entity("China emits the most", "China is the largest emitter.", POOL, rng())
    assert outcome == Edit("entity", "Germany emits the most", "China", "Germany")
    outcome = swap_entity("NASA says it warmed", "NASA data show warming.", POOL, rng())
    assert isinstance(outcome, Edit) and outcome.after == "NOAA"  # an acronym for an acronym


def test_an_entity_missing_from_the_evidence_drops_the_swap() -> None:
    assert swap_entity("China emits the most", "Coal is burnt.", POOL, rng()) == Rejected(
        "entity", "entity_not_in_evidence"
    )
    assert swap_entity("Coal emits the most", "Coal is burnt.", POOL, rng()) is None


def test_aliases_count_as_the_same_entity() -> None:
    pool = EntityPool(["The US, the United States and China."])
    assert swap_entity("The US leads", "The United States leads.", pool, rng()) == Edit(
        "entity", "The China leads", "US", "China"
    )
    assert swap_entity("China leads", "China leads, not America.", pool, rng()) == Rejected(
        "entity", "no_replacement"
    )


def test_selection_takes_kinds_in_turn_one_edit_per_pair_within_the_budget() -> None:
    candidates = [(i, Edit("negation", f"n{i}", "", "")) for i in range(6)]
    candidates += [(i, Edit("number", f"m{i}", "", "")) for i in range(2)]
    chosen = select_edits(candidates, 4, rng())
    kinds = [candidates[j][1].kind for j in chosen]
    pairs = [candidates[j][0] for j in chosen]
    assert len(chosen) == 4 and kinds.count("number") == 2 and len(set(pairs)) == 4
    assert len(select_edits(candidates, None, rng())) == 6  # one per pair, no cap
    assert select_edits(candidates, 0, rng()) == []
