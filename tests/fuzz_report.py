"""How many cases the fuzz tests ran, printed and kept in ``artifacts/fuzz_cases.json`` (not committed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "fuzz_cases.json"
"""``{"schemathesis_cases": N, "hypothesis_cases": N, "schemathesis": {...}, "hypothesis": {...}}``."""


def record(kind: str, name: str, cases: int, **details: Any) -> None:
    """Print and store the cases one fuzz test ran; ``<kind>_cases`` sums the kind's tests.

    Args:
        kind: "schemathesis" or "hypothesis".
        name: The test's short name.
        cases: How many generated (or explicit) cases it ran.
        details: Anything else worth keeping beside the count (seconds, examples per operation).
    """
    print(f"{kind}: {name}: {cases} cases {details or ''}".rstrip())
    try:
        data: dict[str, Any] = json.loads(ARTIFACT.read_text())
    except (OSError, ValueError):
        data = {}
    tests = data.setdefault(kind, {})
    tests[name] = {"cases": cases, **details}
    data[f"{kind}_cases"] = sum(int(t["cases"]) for t in tests.values())
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
