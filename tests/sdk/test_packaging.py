"""The SDK as a distribution: light to import, only httpx and pydantic, and in step with the server."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import verifact
from pydantic import BaseModel
from verifact import models

import api.schemas
import graph.report

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"


def test_importing_the_sdk_pulls_in_no_server_code_and_no_heavy_libraries() -> None:
    heavy = "torch fastapi starlette transformers numpy langgraph faiss graph api retrieval classifier tests"
    code = (
        "import verifact, sys; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(heavy.split())!r}))"
    )
    # From the repository root, where the server's packages are importable too.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_the_sdk_source_names_no_server_package() -> None:
    for path in (SDK / "verifact").rglob("*.py"):
        text = path.read_text()
        for package in ("graph", "api", "retrieval", "classifier"):
            assert f"from {package}" not in text and f"import {package}" not in text, path


def test_the_distribution_is_verifact_0_1_0_with_two_dependencies() -> None:
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert project["name"] == "verifact"
    assert project["version"] == verifact.__version__ == "0.1.0"
    assert sorted(project["dependencies"]) == ["httpx>=0.27", "pydantic>=2.7"]
    assert metadata.version("verifact") == verifact.__version__
    requires = metadata.requires("verifact") or []
    assert sorted(r.split(">")[0].strip() for r in requires) == ["httpx", "pydantic"]


def test_the_sdk_is_typed() -> None:
    assert (SDK / "verifact" / "py.typed").exists()


@pytest.mark.parametrize(
    ("sdk_model", "server_model"),
    [
        (models.VerifyResult, graph.report.VerifyResult),
        (models.ClaimResult, graph.report.ClaimResult),
        (models.EvidenceHit, graph.report.EvidenceHit),
        (models.ScoredSentence, graph.report.ScoredSentence),
        (models.Summary, graph.report.Summary),
        (models.TraceEvent, graph.report.TraceEvent),
        (models.RunHeader, graph.report.RunHeader),
        (models.RunTrace, graph.report.RunTrace),
        (models.TraceSummary, graph.report.TraceSummary),
        (models.TracePage, graph.report.TracePage),
        (models.VerdictDetail, graph.report.Verdict),
        (models.PredictResponse, api.schemas.PredictResponse),
        (models.SentencePrediction, api.schemas.SentencePrediction),
        (models.DocumentsResponse, api.schemas.DocumentsResponse),
        (models.Health, api.schemas.Health),
        (models.ErrorInfo, api.schemas.ErrorBody),
        (models.Document, api.schemas.DocumentIn),
    ],
)
def test_sdk_models_have_the_servers_fields(
    sdk_model: type[BaseModel], server_model: type[BaseModel]
) -> None:
    # A field the server adds is tolerated at run time (extra="allow"), but the SDK should learn it.
    assert set(sdk_model.model_fields) == set(server_model.model_fields)


def test_every_sdk_model_field_is_documented() -> None:
    undocumented = [
        f"{name}.{field}"
        for name in models.__all__
        for field, info in getattr(models, name).model_fields.items()
        if not info.description
    ]
    assert undocumented == []
