"""Interrupted runs, as a user meets them: a job killed mid-write, Ctrl-C, Snakemake itself killed.

The long job is a download from a local HTTP server that sends half the file and then waits, so
each test interrupts a job that is really writing. What the README advises after each must be
exactly what works, and no temporary file may be left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, copy_workflow, snakemake
from fileserver import FileServer

pytestmark = pytest.mark.workflow

TARGET = ("resources/served/raw.npz", "--configfile", "served.yaml")


class StallingFile:
    """A route that sends half of ``body`` on the first request and the rest only once released;
    later requests get everything at once. (The downloader writes in chunks of 1 MiB: the half
    must hold some.)"""

    def __init__(self, body: bytes):
        self.body, self.release = body, threading.Event()

    def __call__(self, handler, n_th_request):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        half = len(self.body) // 2
        try:
            handler.wfile.write(self.body[:half])
            handler.wfile.flush()
            if n_th_request == 1:
                self.release.wait(120)
            handler.wfile.write(self.body[half:])
        except (BrokenPipeError, ConnectionResetError):  # the client was killed
            pass


@pytest.fixture
def stalled(tmp_path):
    """(workdir, route, server): a workflow whose dataset `served` downloads a stalling file."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "served.npz", resp_train=rng.normal(size=(60, 10000)),
             resp_test=rng.normal(size=(60, 10000)), stimuli=np.arange(60) * 6.0 + 3.0)
    route = StallingFile((tmp_path / "served.npz").read_bytes())
    server = FileServer()
    url = server.add("served.npz", route)
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "served.yaml").write_text(
        "run: [served]\ndatasets:\n  served:\n    source: download\n"
        f"    layout: oribinned6_split\n    url: {url}\n    known_hash: null\n"
        "download:\n  retries: 0\n")
    yield workdir, route, server
    route.release.set()
    server.close()


def start_snakemake(workdir: Path) -> subprocess.Popen:
    """Snakemake in its own process group, as a shell starts a command in a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", *TARGET], cwd=workdir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "PYTHONHASHSEED": "0"})


def writing(folder: Path, timeout_s: float = 120) -> tuple[Path, int]:
    """The partly written file in ``folder`` and the process writing it, once it has bytes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in folder.glob("*") if folder.is_dir() else []:
            if path.name.startswith("raw.npz") or not path.stat().st_size:
                continue
            for fd in Path("/proc").glob("[0-9]*/fd/*"):
                try:
                    if os.readlink(fd) == str(path):
                        return path, int(fd.parts[2])
                except OSError:
                    continue
        time.sleep(0.05)
    raise AssertionError(f"nothing was being written in {folder}")


def left_in(workdir: Path) -> list[str]:
    return sorted(os.listdir(workdir / "resources" / "served"))


def test_a_job_killed_mid_write_is_run_again_and_leaves_nothing(stalled):
    # a cluster's memory or time limit, or kill -9: the job dies, Snakemake resubmits it
    workdir, route, _ = stalled
    run = start_snakemake(workdir)
    partial, writer = writing(workdir / "resources" / "served")
    os.kill(writer, signal.SIGKILL)
    output, _ = run.communicate(timeout=300)

    assert run.returncode == 0, output[-3000:]
    assert "Trying to restart job" in output  # the download rule's retries: 1
    assert not partial.exists()
    assert left_in(workdir) == ["raw.npz", "raw.npz.sha256"]
    assert (workdir / "resources" / "served" / "raw.npz").read_bytes() == route.body


def test_ctrl_c_stops_the_run_and_running_again_carries_on(stalled):
    assert "Ctrl-C stops Snakemake and its running jobs" in " ".join(
        (REPO / "README.md").read_text().split())
    workdir, route, _ = stalled
    run = start_snakemake(workdir)
    writing(workdir / "resources" / "served")
    stopped_at = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    run.communicate(timeout=60)
    assert time.monotonic() - stopped_at < 30
    assert run.returncode != 0
    assert not (workdir / "resources" / "served").exists() or left_in(workdir) == []

    route.release.set()
    snakemake(workdir, *TARGET)  # the same command again: no --unlock, nothing to clean
    assert left_in(workdir) == ["raw.npz", "raw.npz.sha256"]


def test_after_snakemake_itself_is_killed_the_readme_advice_recovers(stalled):
    advice = " ".join((REPO / "README.md").read_text().split())
    assert "run `snakemake --unlock`, then the same command again" in advice
    assert "if it reports incomplete files, add `--rerun-incomplete`" in advice
    workdir, route, _ = stalled
    run = start_snakemake(workdir)
    partial, writer = writing(workdir / "resources" / "served")
    os.killpg(run.pid, signal.SIGKILL)  # a power cut: Snakemake and its job die at once
    run.wait()
    with __import__("contextlib").suppress(ProcessLookupError):
        os.kill(writer, signal.SIGKILL)
    assert partial.exists()
    route.release.set()

    locked = snakemake(workdir, *TARGET, check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(workdir, "--unlock", *TARGET)
    # as if the job had been killed just after moving its file into place
    (workdir / "resources" / "served" / "raw.npz").write_bytes(route.body[:100])
    incomplete = snakemake(workdir, *TARGET, check=False)
    assert incomplete.returncode != 0
    assert "--rerun-incomplete" in incomplete.stdout + incomplete.stderr
    snakemake(workdir, "--rerun-incomplete", *TARGET)

    assert left_in(workdir) == ["raw.npz", "raw.npz.sha256"]  # the killed job's file is gone
    assert (workdir / "resources" / "served" / "raw.npz").read_bytes() == route.body


def test_a_run_removes_what_killed_jobs_left_elsewhere(smoke_copy):
    # a job killed while writing an output that no later run makes again
    folder = smoke_copy / "results" / "smoke" / "rdms"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from v1rsa import io\n"
         "with io.atomic_path(sys.argv[1]) as tmp:\n"
         "    tmp.write_bytes(b'half'); print(tmp, flush=True); time.sleep(600)",
         str(folder / "retired.nc")], stdout=subprocess.PIPE, text=True)
    killed = Path(writer.stdout.readline().strip())
    writer.kill()
    writer.wait()
    recent_elsewhere = folder / ".v1.nc.another-host-7.abcd1234.part"  # its writer may be alive
    recent_elsewhere.write_bytes(b"x")

    result = snakemake(smoke_copy, "-f", "results/stimuli/tilt_test.nc",
                       "--configfile", "config/smoke.yaml")
    assert not killed.exists()
    assert recent_elsewhere.exists()
    assert f"removed 1 temporary file(s) left by killed jobs: {killed.relative_to(smoke_copy)}" \
        in result.stdout + result.stderr
