"""Add a passage to a saved hash-encoded index and die by SIGKILL at a chosen point of its save.

``python -m tests.api.index_crash INDEX_DIR POINT``: POINT is where the process kills itself, so no
``except``/``finally`` cleanup runs, as after a power cut or ``kill -9``:

- ``write``: while the new copy's files are being written (the BM25 files, after vectors and passages);
- ``fsync``: at the first fsync of the new copy;
- ``swap``: after the old index was moved aside, before the new copy takes its place;
- ``done``: after the new copy took its place, before the old one is removed.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

from retrieval.index import EvidenceIndex
from retrieval.lexical import LexicalIndex
from retrieval.types import Passage
from tests.fakes import HashEncoder

NEW = Passage(id="new-1", text="Arctic sea ice reached a record low in 2012.", title="Ice")
"""The passage the crashed save was adding."""
POINTS = ("write", "fsync", "swap", "done")


def _die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    """Load, add `NEW`, and save with a SIGKILL planted at ``POINT``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("point", choices=POINTS)
    args = parser.parse_args(argv)
    target: Path = args.index_dir.resolve()
    index = EvidenceIndex.load(target, HashEncoder())
    index.add([NEW])
    real_rename = Path.rename
    if args.point == "write":
        LexicalIndex.save = _die  # type: ignore[method-assign]
    elif args.point == "fsync":
        os.fsync = _die
    else:

        def rename(self: Path, to: Any) -> Any:
            moving_new_copy = self.name.startswith(f".{target.name}.tmp-")
            if args.point == "swap" and moving_new_copy:
                _die()
            result = real_rename(self, to)
            if args.point == "done" and moving_new_copy:
                _die()
            return result

        Path.rename = rename  # type: ignore[method-assign]
    index.save(target)
    raise SystemExit("the save finished: the planted kill never ran")


if __name__ == "__main__":
    main()
