"""Send a stage's log records, warnings and progress to its log file, readable with ``less``."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def log_to_file(path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Route ``logging`` records, ``warnings`` and stderr to ``path``.

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


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str,
             unit: str = "it", enabled: bool = True, every_percent: int = 10):
    """Progress of a long loop: a tqdm bar where stderr is a terminal, else a log line each
    ``every_percent`` percent (a stage's log file then reads line by line, without the bar's
    carriage returns).

    Use as tqdm: iterate over it, or call ``update(n)``; ``set_postfix(**values)`` adds values
    to the next line; ``total`` may be set later (pooch's downloaders do). ``enabled=False``
    shows nothing. A :class:`LogProgress` of ``unit="B"`` shows bytes in MB.
    """
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, every_percent=every_percent)


def byte_progress(desc: str):
    """pooch's ``progressbar`` for a download: True (pooch's own tqdm bar of bytes) where stderr
    is a terminal, else a :class:`LogProgress` of bytes (a line each 10 percent)."""
    return True if sys.stderr.isatty() else LogProgress(desc=desc, unit="B")


class LogProgress:
    """The log-line counterpart of a tqdm bar (see :func:`progress`)."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str, unit: str = "it", every_percent: int = 10):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every_percent = every_percent
        self.n, self._logged_percent, self._postfix = 0, 0, ""
        self._start = time.monotonic()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)

    def __bool__(self) -> bool:  # a progress bar is there (pooch tests it), whatever its length
        return True

    def _amount(self, n: float) -> str:
        return f"{n / 1e6:.1f}" if self.unit == "B" else f"{n:g}"

    def update(self, n: float = 1) -> None:
        """Count ``n`` more; log a line when another ``every_percent`` percent is done."""
        self.n += n
        if not self.total:
            return
        percent = min(100, int(100 * self.n / self.total))
        percent -= percent % self.every_percent
        if percent > self._logged_percent:
            self._logged_percent = percent
            unit = "MB" if self.unit == "B" else self.unit
            log.info("%s: %d%% (%s of %s %s, %.0f s)%s", self.desc, percent,
                     self._amount(min(self.n, self.total)), self._amount(self.total), unit,
                     time.monotonic() - self._start, self._postfix)

    def set_postfix(self, refresh: bool = True, **values) -> None:
        """Values shown at the end of the next line, e.g. ``loss=0.12``."""
        self._postfix = ", " + ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in values.items())

    def reset(self) -> None:
        """Start counting from 0 again; lines already logged are not repeated."""
        self.n = 0

    def close(self) -> None:
        pass
