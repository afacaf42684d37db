"""Send a stage's log records, warnings and progress bars to its log file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def log_to_file(path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Route ``logging`` records, ``warnings`` and stderr (tqdm's progress bars) to ``path``.

    With ``path`` None, records go to stderr. Called once at the start of a stage.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "a", buffering=1)  # noqa: SIM115 -- lives as long as the process
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
