"""The trace viewer: GET /viewer (the page), its static files, GET / (to the viewer), GET /graph."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

from graph.builder import graph_diagram

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "viewer"
"""The viewer's hand-written files: index.html, ES modules, CSS (no build step)."""
STATIC_URL = "/viewer/static"

router = APIRouter()


class GraphEdge(BaseModel):
    """One edge of the verification graph."""

    model_config = ConfigDict(frozen=True)

    source: str
    """The node it leaves (``__start__`` for the entry)."""
    target: str
    """The node it enters (``__end__`` for the exit)."""
    conditional: bool
    """Taken only when a router picks it (detect goes to retrieve per claim, or to report)."""


class GraphDiagram(BaseModel):
    """The verification graph's nodes and edges, for drawing."""

    model_config = ConfigDict(frozen=True)

    nodes: list[str]
    """Node names in the order a run visits them (without ``__start__`` and ``__end__``)."""
    edges: list[GraphEdge]


@cache
def _diagram() -> GraphDiagram:
    # Compiling the graph takes a few milliseconds and it never changes while the process lives.
    return GraphDiagram.model_validate(graph_diagram())


@cache
def _index_html() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def mount_static(app: FastAPI) -> None:
    """Serve the viewer's static files under `STATIC_URL`."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="viewer-static")


@router.get("/graph", response_model=GraphDiagram, tags=["viewer"])
async def graph() -> GraphDiagram:
    """The verification graph as data: its nodes and edges."""
    return _diagram()


@router.get("/viewer", response_class=HTMLResponse, include_in_schema=False)
async def viewer(request: Request) -> HTMLResponse:
    """The viewer's single page; its hash routes pick runs list, run, or verify."""
    html = _index_html()
    root = str(request.scope.get("root_path", "")).rstrip("/")
    if root:  # behind a path prefix, the page's absolute asset URLs need it too
        html = html.replace(f'"{STATIC_URL}/', f'"{root}{STATIC_URL}/')
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
async def root(request: Request) -> RedirectResponse:
    """The viewer is the front page."""
    return RedirectResponse(request.url_for("viewer").path, status_code=307)
