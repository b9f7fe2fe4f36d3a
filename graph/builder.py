"""The verification graph's wiring: split -> detect -> (retrieve -> judge per claim) -> report."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graph import nodes
from graph.context import Context
from graph.state import InputState, State

NODES = ("split", "detect", "retrieve", "judge", "report")
"""Node names, in the order a run visits them."""


def build_graph() -> Any:
    """Compile the graph; invoke it with ``context=Context(...)``."""
    builder = StateGraph(State, context_schema=Context, input_schema=InputState)
    builder.add_node("split", nodes.split)
    builder.add_node("detect", nodes.detect)
    # retrieve and judge take their own task values (sent with `Send`), not the graph state, which
    # langgraph's overloads do not express.
    builder.add_node("retrieve", nodes.retrieve, destinations=("judge",))  # type: ignore[call-overload]
    builder.add_node("judge", nodes.judge)  # type: ignore[call-overload]
    builder.add_node("report", nodes.report)
    builder.add_edge(START, "split")
    builder.add_edge("split", "detect")
    builder.add_conditional_edges("detect", nodes.route_claims, ["retrieve", "report"])
    builder.add_edge("judge", "report")
    builder.add_edge("report", END)
    return builder.compile(name="verifact")


def graph_diagram() -> dict[str, Any]:
    """The graph's nodes and edges as data, for the viewer to draw."""
    graph = build_graph().get_graph()
    return {
        "nodes": [n for n in graph.nodes if n not in ("__start__", "__end__")],
        "edges": [
            {"source": e.source, "target": e.target, "conditional": bool(e.conditional)} for e in graph.edges
        ],
    }
