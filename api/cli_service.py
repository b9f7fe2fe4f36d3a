"""The service commands of the CLI: ``prepare``, ``serve``, ``verify`` and ``traces``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from api.config import Settings, settings_error_message
from graph.blocking import run_blocking
from graph.report import RunTrace, TracePage, VerifyResult

VERDICT_MARK = {"SUPPORTED": "SUPPORTED", "REFUTED": "REFUTED", "NOT_ENOUGH_INFO": "NOT ENOUGH INFO"}


class ServiceCliError(Exception):
    """A problem the user can fix; printed as one line."""


def quiet_model_loading() -> None:
    """Commands print results and their own progress, not weight-loading bars."""
    from huggingface_hub.utils.tqdm import disable_progress_bars
    from transformers.utils import logging as hf_logging

    disable_progress_bars()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def _settings(ns: argparse.Namespace) -> Settings:
    from api.prepare import resolve_model_dirs

    overrides: dict[str, Any] = {}
    for key in ("index_dir", "classifier_dir", "nli_model", "trace_db", "host", "port"):
        value = getattr(ns, key, None)
        if value is not None:
            overrides[key] = value
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ServiceCliError(settings_error_message(exc)) from exc
    return resolve_model_dirs(settings)


def cmd_prepare(ns: argparse.Namespace) -> int:
    """Train and build whatever the embedded defaults still lack."""
    from api.prepare import PrepareError, prepare

    try:
        prepare(_settings(ns))
    except PrepareError as exc:
        raise ServiceCliError(str(exc)) from exc
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    """Run the HTTP server (after preparing, with --prepare)."""
    import uvicorn

    from api.access import AccessConfigError, serve_note
    from api.main import create_app, uvicorn_config
    from api.prepare import PrepareError, prepare

    settings = _settings(ns)
    try:  # before preparing, which may take minutes: a refused start should say so at once
        access = serve_note(settings)
    except AccessConfigError as exc:
        raise ServiceCliError(str(exc)) from exc
    if ns.prepare:
        try:
            settings = prepare(settings)
        except PrepareError as exc:
            raise ServiceCliError(str(exc)) from exc
    quiet_model_loading()
    base = f"http://{settings.host}:{settings.port}"
    print(
        f"verifact: serving on {base}\n  viewer:    {base}/viewer\n  API docs:  {base}/docs\n"
        f"  readiness: {base}/readyz\n  {access}",
        flush=True,
    )
    uvicorn.Server(uvicorn_config(create_app(settings), settings, ns.log_level)).run()
    return 0


def _read_text(ns: argparse.Namespace) -> str:
    if ns.file:
        try:
            return Path(ns.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ServiceCliError(f"cannot read {ns.file}: {exc}") from exc
    if ns.text == "-" or (ns.text is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    if ns.text is None:
        raise ServiceCliError("no text given: pass TEXT, '-' to read stdin, or --file F")
    return str(ns.text)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_result(result: VerifyResult) -> str:
    """A readable table of a run's claims and its summary."""
    lines: list[str] = []
    s = result.summary
    if not result.claims:
        lines.append(
            f"no check-worthy claim among {s.sentences} sentence(s) (threshold {result.threshold:.2f})"
        )
    else:
        lines.append(f"{'#':>3}  {'verdict':<15}  {'conf':>4}  {'cw':>4}  claim / evidence")
        for i, c in enumerate(result.claims, 1):
            mark = VERDICT_MARK[c.verdict]
            lines.append(f"{i:>3}  {mark:<15}  {c.confidence:4.2f}  {c.score:4.2f}  {_clip(c.text, 90)}")
            if c.citations:
                lines.append(f"{'':>35}cites: {', '.join(c.citations)}")
            if c.rationale:
                lines.append(f"{'':>35}{_clip(c.rationale, 90)}")
            if c.error:
                lines.append(f"{'':>35}error: {_clip(c.error, 90)}")
    lines.append(
        f"{s.sentences} sentences, {s.check_worthy} check-worthy, {s.checked} checked: "
        f"{s.supported} supported, {s.refuted} refuted, {s.not_enough_info} not enough info"
        + (f", {s.errors} with errors" if s.errors else "")
    )
    lines.append(f"trace {result.trace_id} · {result.duration_ms:.0f} ms · status {result.status}")
    return "\n".join(lines)


def cmd_verify(ns: argparse.Namespace) -> int:
    """Verify a text in-process with the same pipeline the server runs."""
    import asyncio

    from graph.pipeline import Pipeline
    from graph.report import VerifyOptions
    from graph.services import load_services

    text = _read_text(ns)
    if not text.strip():
        raise ServiceCliError("the text is empty")
    settings = _settings(ns)
    quiet_model_loading()
    if len(text) > settings.max_text_chars:
        raise ServiceCliError(f"text has {len(text)} characters; the limit is {settings.max_text_chars}")
    try:
        options = VerifyOptions(
            threshold=ns.threshold,
            top_k=ns.top_k,
            max_claims=ns.max_claims,
            judge=ns.judge,
            include_trace=ns.trace,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).replace("_", "-")
        raise ServiceCliError(f"--{where}: {first['msg']}") from exc

    async def run() -> VerifyResult:
        loaded = await run_blocking(load_services, settings.pipeline())
        try:
            return await Pipeline(loaded.context).averify(text, options)
        finally:
            await loaded.aclose()

    result = asyncio.run(run())
    print(result.model_dump_json(indent=2) if ns.json else render_result(result))
    return 0


def _store(ns: argparse.Namespace) -> Any:
    from graph.tracestore import open_trace_store

    return open_trace_store(_settings(ns).trace_db)


def render_page(page: TracePage) -> str:
    """A table of trace summaries."""
    if not page.items:
        return "no traces"
    lines = [f"{'trace id':<32}  {'created (UTC)':<19}  {'status':<7}  {'S/R/N':>8}  {'ms':>6}  text"]
    for t in page.items:
        s = t.summary
        counts = f"{s.supported}/{s.refuted}/{s.not_enough_info}"
        created = t.created_at.strftime("%Y-%m-%d %H:%M:%S")
        row = f"{t.trace_id:<32}  {created:<19}  {t.status:<7}  {counts:>8}  {t.duration_ms:6.0f}"
        lines.append(f"{row}  {_clip(t.snippet, 50)}")
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    return "\n".join(lines)


def render_trace(trace: RunTrace) -> str:
    """A run's header, claims and node timeline."""
    h = trace.header
    lines = [
        f"trace {h.trace_id} · {h.created_at.isoformat()} · {h.status} · {h.duration_ms:.0f} ms",
        f"path: {' -> '.join(trace.path)}",
        f"options: {json.dumps(h.options, sort_keys=True)}",
    ]
    if h.status_reason:
        lines.append(f"reason: {h.status_reason}")
    for c in trace.claims:
        lines.append(f"  [{c.claim_id}] {VERDICT_MARK[c.verdict]} {c.confidence:.2f}  {_clip(c.text, 80)}")
    lines.append("timeline:")
    for e in trace.events:
        who = f" {e.claim_id}" if e.claim_id else ""
        err = f"  error: {e.error}" if e.error else ""
        lines.append(f"  {e.node:<8}{who:<6} {e.duration_ms:8.1f} ms{err}")
    return "\n".join(lines)


def cmd_traces(ns: argparse.Namespace) -> int:
    """List, show or delete stored traces."""
    from graph.tracestore import TraceQuery

    store = _store(ns)
    try:
        if ns.traces_command == "list":
            page = store.list(
                TraceQuery(
                    limit=ns.limit,
                    cursor=ns.cursor,
                    verdict=ns.verdict,
                    status=ns.status,
                    text=ns.q,
                    since=ns.since,
                    until=ns.until,
                )
            )
            print(page.model_dump_json(indent=2) if ns.json else render_page(page))
            return 0
        if ns.traces_command == "show":
            trace = store.get(ns.trace_id)
            if trace is None:
                raise ServiceCliError(f"no trace {ns.trace_id}")
            print(trace.model_dump_json(indent=2) if ns.json else render_trace(trace))
            return 0
        if not store.delete(ns.trace_id):
            raise ServiceCliError(f"no trace {ns.trace_id}")
        print(f"deleted {ns.trace_id}")
        return 0
    finally:
        store.close()


def _page_size(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= n <= 200:
        raise argparse.ArgumentTypeError(f"must be between 1 and 200, got {n}")
    return n


def _when(value: str) -> datetime:
    """An ISO 8601 date or date and time; without a zone it is UTC, as the API takes it."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or time: {value!r} (e.g. 2026-11-30 or 2026-11-30T08:00+01:00)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _locations(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index-dir", help="evidence index (default: $VERIFACT_INDEX_DIR or runs/index)")
    p.add_argument("--classifier-dir", help="check-worthiness model (default: $VERIFACT_CLASSIFIER_DIR)")
    p.add_argument("--nli-model", help="NLI verifier model (default: $VERIFACT_NLI_MODEL)")
    p.add_argument(
        "--trace-db", help="trace store: SQLite path or SQLAlchemy URL (default: $VERIFACT_TRACE_DB)"
    )


def add_service_parsers(sub: Any) -> None:
    """Register prepare, serve, verify and traces."""
    p = sub.add_parser("prepare", help="train and build the embedded defaults that are missing (once)")
    _locations(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("serve", help="run the HTTP API")
    _locations(p)
    p.add_argument("--host", help="bind address (default: $VERIFACT_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $VERIFACT_PORT or 8000)")
    p.add_argument("--prepare", action="store_true", help="first train and build whatever is missing")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("verify", help="check a text's claims (in-process, no server needed)")
    p.add_argument("text", nargs="?", help="the text, or '-' for stdin")
    p.add_argument("--file", help="read the text from a file")
    _locations(p)
    p.add_argument("--threshold", type=float, help="check-worthiness cut-off (default: the model's)")
    p.add_argument("--top-k", type=int, default=5, help="evidence passages per claim (default: 5)")
    p.add_argument("--max-claims", type=int, default=20, help="claims checked at most (default: 20)")
    p.add_argument("--judge", default="auto", choices=["auto", "llm", "nli"])
    p.add_argument("--trace", action="store_true", help="include the full trace (with --json)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("traces", help="stored traces")
    tsub = p.add_subparsers(dest="traces_command", required=True)
    t = tsub.add_parser("list", help="recent runs, newest first")
    _locations(t)
    t.add_argument("--limit", type=_page_size, default=20, help="1 to 200 (default: 20)")
    t.add_argument("--cursor")
    t.add_argument("--verdict", choices=["SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"])
    t.add_argument("--status", choices=["ok", "partial", "error"])
    t.add_argument("--q", help="text the input contains")
    t.add_argument("--since", type=_when, help="runs created at or after this (ISO 8601; UTC if no zone)")
    t.add_argument("--until", type=_when, help="runs created before this (ISO 8601; UTC if no zone)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_traces)
    for name, help_text in (("show", "one run's trace"), ("delete", "delete one run's trace")):
        t = tsub.add_parser(name, help=help_text)
        t.add_argument("trace_id")
        _locations(t)
        t.add_argument("--json", action="store_true")
        t.set_defaults(func=cmd_traces)
