"""Counterfactual claims: REFUTED pairs made from SUPPORTED ones by one checked edit of the claim.

The COVID-Fact and VitaminC recipe: the evidence stays, one controlled edit makes the claim say
something the evidence contradicts. Every edit is checked, and one that fails its check is dropped
with its reason counted:

- ``negation``: one negation added or removed at the claim's first auxiliary or known verb
  ("is" -> "is not", "can" -> "cannot", "causes" -> "does not cause", "no" -> "some",
  "does not" -> "does", "never" dropped). Check: the token sequences differ by exactly one negator,
  plus at most the auxiliary or inflection the negation needs. Hedged modals (may, might, could)
  are dropped: "X may not cause Y" does not contradict "X may cause Y"; so are claims with two
  negations and fixed phrases ("not only", "no doubt").
- ``number``: one number, year, number word or month changed (a year by 2 to 10 years, a quantity
  times or divided by 2, 3 or 10). Check: the original value is stated in the evidence and the new
  one is not, so the evidence gives the value the edited claim gets wrong.
- ``antonym``: one word swapped for its opposite from `ANTONYMS`, a hand-written list for news and
  science claims. Check: exactly one word differs and the pair is listed; a claim that already holds
  the opposite ("rise and fall") is dropped.
- ``entity``: one country, region, organisation or multi-word name swapped for another of the same
  kind seen elsewhere in the sources (`EntityPool`). Check: the original is in the evidence and
  neither the new one nor its aliases are.

Rules are heuristics on surface text, not a parser: the checks are what keeps their output honest.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

EditKind = Literal["negation", "number", "antonym", "entity"]
EDIT_KINDS: tuple[EditKind, ...] = ("negation", "number", "antonym", "entity")


@dataclass(frozen=True)
class Edit:
    """A claim edit that passed its check."""

    kind: EditKind
    claim: str
    """The edited claim."""
    before: str
    """The span of the original claim that changed."""
    after: str
    """What it became."""


@dataclass(frozen=True)
class Rejected:
    """An edit that was tried and failed its check."""

    kind: EditKind
    reason: str


Outcome = Edit | Rejected | None
"""None: the rule found nothing to edit in the claim."""


def words(text: str, sep: str | None = None) -> list[str]:
    """The items of a word list written as one string: split on white space, or on `sep`."""
    return [w.strip() for w in text.split(sep)]


def _pair_map(text: str) -> dict[str, str]:
    """Map the pairs of "a b, c d" both ways; a word keeps the first pair it appears in."""
    out: dict[str, str] = {}
    for pair in text.split(","):
        a, b = pair.lower().split()
        out.setdefault(a, b)
        out.setdefault(b, a)
    return out


ANTONYMS = _pair_map(
    "increase decrease, increases decreases, increased decreased, increasing decreasing,"
    "rise fall, rises falls, rose fell, risen fallen, rising falling, grow shrink, grows shrinks,"
    "grew shrank, growing shrinking, gain lose, gains loses, gained lost, more less, fewer more,"
    "most least, higher lower, highest lowest, high low, larger smaller, largest smallest,"
    "large small, bigger smaller, greater smaller, longer shorter, long short, faster slower,"
    "fast slow, warmer cooler, warming cooling, warm cool, warmest coolest, hotter colder, hot cold,"
    "wetter drier, wet dry, thicker thinner, thick thin, above below, before after, earlier later,"
    "early late, first last, safe dangerous, safer riskier, effective ineffective, positive negative,"
    "strong weak, stronger weaker, strengthen weaken, improve worsen, improves worsens,"
    "improved worsened, better worse, best worst, good bad, beneficial harmful, healthy unhealthy,"
    "likely unlikely, possible impossible, true false, accurate inaccurate, reliable unreliable,"
    "significant insignificant, stable unstable, success failure, successful unsuccessful,"
    "succeeded failed, accept reject, accepted rejected, approved rejected, allow ban, allowed banned,"
    "legal illegal, include exclude, included excluded, support oppose, supports opposes,"
    "agree disagree, agrees disagrees, win lose, won lost, majority minority, maximum minimum,"
    "mild severe, symptomatic asymptomatic, presence absence, inside outside, indoor outdoor,"
    "indoors outdoors, north south, northern southern, east west, eastern western, Arctic Antarctic,"
    "melting freezing, accelerate slow, accelerating slowing, accelerated slowed, die survive,"
    "died survived, raise lower, raised lowered, raises lowers, add remove, added removed,"
    "rich poor, richer poorer, cheap expensive, natural artificial, abundant scarce,"
    "surplus shortage, reduce increase, reduces increases, reduced increased, reducing increasing,"
    "internal external, private public, younger older, male female, domestic foreign, urban rural"
)
"""Opposites for news and science claims; a word maps to one opposite (the first pair it is in)."""

_HEDGES = frozenset({"may", "might", "could"})
_NEGATORS = frozenset({"not", "never", "no", "n't", "cannot"})
_NEG_HELPERS = _NEGATORS | {"does", "do", "did", "ca", "can", "wo", "will", "some", "still", "longer"}
_FIXED = re.compile(r"\b(not only|not just|no doubt|no matter|no one|not necessarily)\b", re.I)
_TOKEN = re.compile(r"\w+(?=n['’]t\b)|n['’]t\b|\w+")
_WORD = re.compile(r"\b[A-Za-z]+\b")
# Negation removal, tried in this order; group "aux" names the auxiliary for the hedge check.
_REMOVALS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?P<aux>can)not\b", re.I), r"\g<aux>"),
    (re.compile(r"\b(?P<aux>ca|wo)n['’]t\b", re.I), "special"),
    (re.compile(r"\b(?P<aux>\w+)n['’]t\b", re.I), r"\g<aux>"),
    (re.compile(r"\b(?P<aux>\w+)\s+not\b", re.I), r"\g<aux>"),
    (re.compile(r"\bnot\s+", re.I), ""),
    (re.compile(r"\bnever\s+", re.I), ""),
    (re.compile(r"\bno longer\b", re.I), "still"),
    (re.compile(r"\bno\b(?=\s+\w)", re.I), "some"),
)
_AUX = re.compile(r"\b(?P<aux>is|are|was|were|will|would|should|must|does|do|did|may|might|could)\b", re.I)
_CAN = re.compile(r"\b(?P<aux>can)\b", re.I)
_PERFECT = re.compile(r"\b(?P<aux>has|have|had)\s+(?=(?:been|\w+ed|\w+en)\b)", re.I)
_IRREGULAR_PAST = {"lead": "led", "make": "made", "drive": "drove", "have": "had", "grow": "grew"}
_VERBS = words(
    "cause increase reduce kill prevent protect help lead affect show make contain produce infect "
    "block cure treat improve raise lower boost drive trigger worsen damage destroy threaten harm "
    "predict explain support have grow melt warm cool"
)
_NOT_BEFORE_VERB = frozenset(
    words(
        "to the a an of in on for with by from its their his her our this these those no any some more "
        "less most each every and or as than"
    )
)
_NUMBER = re.compile(r"(?<![\w.,\-/])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w\-/]|[.,]\d)")
_NUMBER_WORDS = dict(
    zip(
        words("two three four five six seven eight nine ten eleven twelve twenty"),
        [*range(2, 13), 20],
        strict=True,
    )
)
_MONTHS = words("January February March April June July August September October November December")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _inflections(lemma: str) -> dict[str, str]:
    """A verb's 3rd-person and past forms, each mapped to the auxiliary that negates it."""
    third = lemma[:-1] + "ies" if lemma.endswith("y") else lemma + ("es" if lemma.endswith("sh") else "s")
    past = _IRREGULAR_PAST.get(lemma) or lemma + ("d" if lemma.endswith("e") else "ed")
    return {("has" if lemma == "have" else third): "does", past: "did", lemma: "do"}


_VERB_FORMS = {form: (lemma, aux) for lemma in _VERBS for form, aux in _inflections(lemma).items()}


def _match_case(model: str, word: str) -> str:
    if model.isupper() and len(model) > 1:
        return word.upper()
    return word[0].upper() + word[1:] if model[:1].isupper() else word


def _finish(original: str, edited: str) -> str:
    edited = re.sub(r"\s{2,}", " ", edited).strip()
    return edited[0].upper() + edited[1:] if original[:1].isupper() and edited else edited


def single_negation_change(before: str, after: str) -> bool:
    """Whether `after` is `before` with exactly one negation added or removed, and nothing else."""
    a, b = _tokens(before), _tokens(after)
    if abs(sum(t in _NEGATORS for t in a) - sum(t in _NEGATORS for t in b)) != 1:
        return False
    rest_a: list[str] = []
    rest_b: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            rest_a += [t for t in a[i1:i2] if t not in _NEG_HELPERS]
            rest_b += [t for t in b[j1:j2] if t not in _NEG_HELPERS]
    if not rest_a and not rest_b:
        return True
    # "causes" -> "does not cause": the verb may only lose or regain its inflection.
    pair = (rest_a[0], rest_b[0]) if len(rest_a) == len(rest_b) == 1 else None
    return pair is not None and any(
        f in _VERB_FORMS and _VERB_FORMS[f][0] == lem for f, lem in (pair, pair[::-1])
    )


def _verb_site(claim: str) -> tuple[int, int, str, str] | None:
    """The first known lexical verb: (start, end, replacement, auxiliary)."""
    found = list(re.finditer(r"\w+", claim))
    for prev, m in itertools.pairwise(found):
        form, before = m.group().lower(), prev.group().lower()
        if form not in _VERB_FORMS or before in _NOT_BEFORE_VERB:
            continue
        lemma, aux = _VERB_FORMS[form]
        # A bare form after a plural noun ("masks reduce"); elsewhere it is usually a noun ("sharp increase").
        if aux == "do" and not (before.endswith("s") and not before.endswith(("ss", "us", "is", "as"))):
            continue
        return m.start(), m.end(), f"{aux} not {lemma}", aux
    return None


def negate(claim: str) -> Outcome:
    """Add or remove one negation (see the module docstring for the check)."""
    count = sum(t in _NEGATORS for t in _tokens(claim))
    if count > 1:
        return Rejected("negation", "several_negations")
    if _FIXED.search(claim):
        return Rejected("negation", "fixed_phrase")
    edited = aux = ""
    if count == 1:
        for pattern, repl in _REMOVALS:
            m = pattern.search(claim)
            if m:
                aux = (m.groupdict().get("aux") or "").lower()
                new = {"ca": "can", "wo": "will"}.get(aux, aux) if repl == "special" else m.expand(repl)
                edited = claim[: m.start()] + _match_case(m.group(), new) if new else claim[: m.start()]
                edited += claim[m.end() :]
                break
    else:
        # The earliest site wins; at one position an auxiliary beats a lexical verb ("have risen").
        sites = []
        for pattern, insert in ((_AUX, r"\g<aux> not"), (_CAN, r"\g<aux>not"), (_PERFECT, r"\g<aux> not ")):
            m = pattern.search(claim)
            if m:
                sites.append((m.start(), 0, m.end(), m.expand(insert), m.group("aux").lower()))
        verb = _verb_site(claim)
        sites += [(verb[0], 1, *verb[1:])] if verb else []
        if not sites:
            return None
        start, _, end, new, aux = min(sites)
        edited = claim[:start] + new + claim[end:]
    if not edited:
        return Rejected("negation", "unhandled_negation")
    if aux in _HEDGES:
        return Rejected("negation", "hedged_modal")
    edited = _finish(claim, edited)
    if not single_negation_change(claim, edited):
        return Rejected("negation", "not_a_single_negation")
    return Edit("negation", edited, claim, edited)


def _value(digits: str, decimals: str | None) -> float:
    return float(digits.replace(",", "") + (decimals or ""))


def _evidence_numbers(evidence: str) -> set[float]:
    return {_value(m.group(1), m.group(2)) for m in _NUMBER.finditer(evidence)}


def _new_values(value: float, decimals: int, is_year: bool, is_pct: bool) -> list[float]:
    if is_year:
        return [value + d for d in (-10, -5, -3, -2, 2, 3, 5, 10) if value + d <= 2100]
    out = [value * f for f in (2, 3, 10, 0.5, 0.1)]
    if decimals == 0:
        out = [v for v in out if v == int(v) and v >= 1]
    return [v for v in out if v != value and (v <= 100 or not is_pct)]


def has_word(text: str, word: str, *, case: bool = True) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, 0 if case else re.I) is not None


def change_number(claim: str, evidence: str, rng: random.Random) -> Outcome:
    """Change one number, year, number word or month that the evidence states."""
    targets: list[tuple[int, int, list[str]]] = []
    found = False
    in_evidence = _evidence_numbers(evidence)
    for m in _NUMBER.finditer(claim):
        found = True
        value, decimals = _value(m.group(1), m.group(2)), len(m.group(2) or "") - bool(m.group(2))
        if value not in in_evidence:
            continue
        is_year = decimals == 0 and "," not in m.group() and 1800 <= value <= 2100
        is_pct = claim[m.end() :].lstrip().startswith(("%", "percent"))
        sep = "," if "," in m.group() else ""
        news = [
            f"{v:{sep}.{decimals}f}"
            for v in _new_values(value, decimals, is_year, is_pct)
            if v not in in_evidence
        ]
        targets.append((m.start(), m.end(), news))
    for m in re.finditer(r"[A-Za-z]+", claim):
        word = m.group()
        if word.lower() in _NUMBER_WORDS or word in _MONTHS:
            found = True
            options = _MONTHS if word in _MONTHS else list(_NUMBER_WORDS)
            said = _NUMBER_WORDS.get(word.lower())
            if not (has_word(evidence, word, case=False) or (said and said in in_evidence)):
                continue
            news = [
                _match_case(word, w)
                for w in options
                if w.lower() != word.lower()
                and not has_word(evidence, w, case=False)
                and (_NUMBER_WORDS.get(w, 0) not in in_evidence)
            ]
            targets.append((m.start(), m.end(), news))
    if not found:
        return None
    if not targets:
        return Rejected("number", "number_not_in_evidence")
    start, end, news = rng.choice(targets)
    if not news:
        return Rejected("number", "new_value_in_evidence")
    new = rng.choice(news)
    return Edit("number", claim[:start] + new + claim[end:], claim[start:end], new)


def swap_antonym(claim: str, rng: random.Random) -> Outcome:
    """Swap one word for its listed opposite."""
    found = [m for m in _WORD.finditer(claim) if m.group().lower() in ANTONYMS]
    if not found:
        return None
    present = set(_tokens(claim))
    usable = [m for m in found if ANTONYMS[m.group().lower()] not in present]
    if not usable:
        return Rejected("antonym", "antonym_already_in_claim")
    m = rng.choice(usable)
    new = _match_case(m.group(), ANTONYMS[m.group().lower()])
    edited = claim[: m.start()] + new + claim[m.end() :]
    before, after = _tokens(claim), _tokens(edited)
    changed = [(x, y) for x, y in zip(before, after, strict=False) if x != y]
    if len(before) != len(after) or len(changed) != 1 or ANTONYMS.get(changed[0][0]) != changed[0][1]:
        return Rejected("antonym", "not_a_single_listed_swap")
    return Edit("antonym", edited, m.group(), new)


def select_edits(candidates: list[tuple[int, Edit]], budget: int | None, rng: random.Random) -> list[int]:
    """Indices into `candidates` to keep: the edit kinds in turn, at most one edit per source pair.

    Taking the kinds in turn keeps the rarer edits (numbers, entities) from being crowded out by
    negation, which applies to almost every claim.
    """
    queues: dict[EditKind, list[int]] = {k: [] for k in EDIT_KINDS}
    for i, (_, edit) in enumerate(candidates):
        queues[edit.kind].append(i)
    for queue in queues.values():
        rng.shuffle(queue)
    chosen: list[int] = []
    used: set[int] = set()
    limit = len(candidates) if budget is None else budget
    while len(chosen) < limit and any(queues.values()):
        for kind in EDIT_KINDS:
            while queues[kind] and len(chosen) < limit:
                i = queues[kind].pop()
                if candidates[i][0] not in used:
                    used.add(candidates[i][0])
                    chosen.append(i)
                    break
    return sorted(chosen)
