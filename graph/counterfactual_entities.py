"""Entity swaps for counterfactual claims: find countries, regions, organisations and people, swap one.

A swap is kept only when the evidence names the original entity (or an alias, "US" for "United
States") and names neither the new one nor its aliases: the evidence then states who or where, and
the edited claim gets it wrong. Kinds come from short hand-written lists (countries, regions,
organisation acronyms and words such as "University"), and two or three capitalised words that are
not place, title or date words make a "person". The replacement is another entity of the same kind
(organisations also of the same shape, acronym or not) seen in the sources (`EntityPool`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from graph.counterfactual import Edit, Outcome, Rejected, has_word, words

_ALIASES = (
    ("United States", "US", "U.S.", "USA", "America"),
    ("United Kingdom", "UK", "U.K.", "Britain", "Great Britain", "England"),
)
_COUNTRIES = frozenset(
    [a for group in _ALIASES for a in group]
    + words(
        "China, India, Russia, Brazil, Canada, Mexico, Australia, Japan, Germany, France, Italy, Spain, "
        "Scotland, Ireland, Sweden, Norway, Denmark, Finland, Netherlands, Belgium, Switzerland, Austria, "
        "Poland, Greece, Portugal, Turkey, Iran, Iraq, Israel, Egypt, Nigeria, Kenya, Ethiopia, Pakistan, "
        "Bangladesh, Indonesia, Vietnam, Thailand, Philippines, Malaysia, Singapore, Korea, Taiwan, "
        "Argentina, Chile, Peru, Colombia, Venezuela, Cuba, Iceland, Ukraine, Qatar, Saudi Arabia, "
        "South Africa, South Korea, North Korea, New Zealand",
        ",",
    )
)
_REGIONS = frozenset(
    words(
        "Africa, Asia, Europe, Antarctica, Greenland, Siberia, Alaska, California, Texas, Florida, Wuhan, "
        "London, North America, South America, Latin America, Middle East, New York, Hong Kong",
        ",",
    )
)
_ORG_ACRONYMS = frozenset(
    words(
        "WHO CDC NASA NOAA IPCC FDA EPA NIH UN EU NHS WMO UNEP NSIDC IEA OPEC NATO IMF UNICEF FEMA CSIRO "
        "ESA MIT NIAID ECDC GISS"
    )
)
_ORG_WORDS = frozenset(
    words(
        "Organization Organisation University Institute Agency Administration Association Council "
        "Department Ministry Commission Company Corporation Foundation Society Bank Party Panel Academy "
        "Laboratory College Hospital Centers Center Centre Service Office Board Committee Authority Survey "
        "Program Programme Network Fund Trust School Court Congress Senate Parliament"
    )
)
_STARTERS = frozenset(
    words(
        "The A An In On At This That These Those It There According After Before During When While If "
        "New Study Scientists Researchers Experts"
    )
)
# Capitalised words that are seldom part of a person's name: without a tagger, a "person" is two
# or three capitalised words none of which is listed here.
_DATES = frozenset(
    words(
        "January February March April May June July August September October November December Monday "
        "Tuesday Wednesday Thursday Friday Saturday Sunday"
    )
)
_NOT_PERSON = (
    _STARTERS
    | _DATES
    | frozenset(
        words(
            "Climate Change Global Warming Earth Sea Ocean Oceans Bay River Lake Island Islands "
            "Mountain Mountains National Park Day Award Awards Trophy Cup Team Men Women Church "
            "Reef Barrier Great Northern Southern Eastern Western North South East West Ice Age "
            "Little Medieval Period Hurricane Storm Station Space Street Road Hall Museum Festival "
            "Show Tour Series Album Records Film Prize Championship League Club Games World War Act "
            "Report Times Post News Journal Magazine Review Press Air Force Army Navy Republic "
            "State States Kingdom City County"
        )
    )
)
_CAP = r"(?:U\.S\.|U\.K\.|[A-Z]{2,6}|[A-Z][a-z]+(?:[A-Z][a-z]*)*(?:[-'’][A-Za-z]+)*)"
_NAME = re.compile(rf"(?<![\w.\-]){_CAP}(?:\s+(?:(?:of|the|for|de)\s+)?{_CAP})*(?![\w\-])")
_PERSON_WORD = re.compile(r"[A-Z][a-z]+(?:[A-Z][a-z]+)?")


def entity_kind(name: str) -> str | None:
    """country, region, organisation or person (see `_NOT_PERSON`); None for anything else."""
    parts = name.split()
    if name in _COUNTRIES:
        return "country"
    if name in _REGIONS:
        return "region"
    if name in _ORG_ACRONYMS or (len(parts) >= 2 and (parts[-1] in _ORG_WORDS or parts[0] in _ORG_WORDS)):
        return "organisation"
    person = all(_PERSON_WORD.fullmatch(w) and w not in _NOT_PERSON for w in parts)
    return "person" if 2 <= len(parts) <= 3 and person else None


def find_entities(text: str) -> list[tuple[int, int, str, str]]:
    """The entities of a text as (start, end, name, kind); leading "The", "In", ... are not part of one."""
    out = []
    for m in _NAME.finditer(text):
        start, name = m.start(), m.group()
        first, _, rest = name.partition(" ")
        while rest and (first in _STARTERS or first in _DATES or first.islower()):
            start, name = start + len(first) + 1, rest
            first, _, rest = name.partition(" ")
        kind = entity_kind(name)
        if kind:
            out.append((start, start + len(name), name, kind))
    return out


def _aliases(name: str) -> tuple[str, ...]:
    return next((g for g in _ALIASES if name in g), (name,))


class EntityPool:
    """The entities seen in a set of texts, by kind: where swapped-in entities come from."""

    def __init__(self, texts: Iterable[str]) -> None:
        found: dict[str, set[str]] = {}
        for text in texts:
            # Title-case text (headlines) makes every word look like a name.
            tokens = text.split()
            if len(tokens) >= 6 and sum(w[:1].isupper() for w in tokens) > 0.75 * len(tokens):
                continue
            for _, _, name, kind in find_entities(text):
                found.setdefault(kind, set()).add(name)
        self.by_kind = {kind: sorted(names) for kind, names in sorted(found.items())}
        """Entity names per kind, sorted so that a seeded choice is reproducible."""

    def replacement(self, name: str, kind: str, avoid: str, rng: random.Random) -> str | None:
        """Another entity of `kind` whose aliases are all absent from `avoid`.

        An organisation is replaced by one of its shape: "the NASA" or "WHO said" with a long name
        swapped in would read wrong.
        """
        names = self.by_kind.get(kind, [])
        if kind == "organisation":
            names = [n for n in names if n.isupper() == name.isupper()]
        own = set(_aliases(name))
        for other in rng.sample(names, min(len(names), 50)):
            if other not in own and not any(has_word(avoid, a, case=False) for a in _aliases(other)):
                return other
        return None


def swap_entity(claim: str, evidence: str, pool: EntityPool, rng: random.Random) -> Outcome:
    """Swap an entity the evidence names for another of its kind that the evidence does not name."""
    entities = find_entities(claim)
    if not entities:
        return None
    named = [e for e in entities if any(has_word(evidence, a) for a in _aliases(e[2]))]
    if not named:
        return Rejected("entity", "entity_not_in_evidence")
    start, end, name, kind = rng.choice(named)
    new = pool.replacement(name, kind, claim + "\n" + evidence, rng)
    if new is None:
        return Rejected("entity", "no_replacement")
    return Edit("entity", claim[:start] + new + claim[end:], name, new)
