"""v1rsa.logs: progress as a bar on a terminal, as a log line per tenth in a log file."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from v1rsa import logs


class Terminal(io.StringIO):
    def isatty(self):
        return True


def progress_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "v1rsa.logs"]


def test_off_a_terminal_progress_is_a_log_line_per_tenth(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with caplog.at_level(logging.INFO, logger="v1rsa.logs"):
        bar = logs.progress(range(250), desc="train_encoder", unit="step")
        for step in bar:
            if step == 124:
                bar.set_postfix(loss=0.123456, refresh=False)
    lines = progress_lines(caplog)
    assert len(lines) == 10
    assert lines[0].startswith("train_encoder: 10% (25 of 250 step, ")
    assert lines[4].endswith(", loss=0.1235")  # the 50% line, after set_postfix
    assert lines[-1].startswith("train_encoder: 100% (250 of 250 step, ")
    assert sys.stderr.getvalue() == ""


def test_on_a_terminal_progress_is_a_tqdm_bar(caplog, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with caplog.at_level(logging.INFO, logger="v1rsa.logs"):
        assert list(logs.progress(range(50), desc="occlusion", unit="batch")) == list(range(50))
    assert "occlusion: 100%" in terminal.getvalue() and "\r" in terminal.getvalue()
    assert progress_lines(caplog) == []


def test_disabled_progress_shows_nothing(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    with caplog.at_level(logging.INFO, logger="v1rsa.logs"):
        assert list(logs.progress(range(5), desc="x", enabled=False)) == list(range(5))
    assert sys.stderr.getvalue() == "" and progress_lines(caplog) == []


def test_byte_progress_as_pooch_drives_it(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = logs.byte_progress("download raw.npy")
    assert bar  # pooch shows a bar only when this is true
    with caplog.at_level(logging.INFO, logger="v1rsa.logs"):
        bar.total = 5_000_000  # pooch: the Content-Length, then chunks, then reset and the total
        for _ in range(5):
            bar.update(1 << 20)
        bar.reset()
        bar.update(5_000_000)
        bar.close()
    lines = progress_lines(caplog)
    # a line per tenth reached (1 MiB chunks: 20%, 40%, ...), none twice after reset()
    assert [line.split("%")[0][-3:].strip() for line in lines] == ["20", "40", "60", "80", "100"]
    assert lines[-1].startswith("download raw.npy: 100% (5.0 of 5.0 MB, ")
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert logs.byte_progress("download raw.npy") is True  # pooch's own tqdm bar


@pytest.mark.parametrize("total", [None, 0])
def test_progress_of_an_unknown_total_logs_nothing(caplog, total):
    bar = logs.LogProgress(total=total, desc="download", unit="B")
    with caplog.at_level(logging.INFO, logger="v1rsa.logs"):
        bar.update(1000)
    assert progress_lines(caplog) == []
