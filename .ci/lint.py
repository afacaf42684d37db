"""Snakemake's linter on the workflow, failing on every finding but the one we answer otherwise.

    python .ci/lint.py        # from the repository root; prints the findings, exit 1 if any count

The linter asks each rule for a conda environment or a container. This project answers with one
pip environment pinned by requirements.lock (README, "Set up and run"): no conda environment or
container image can be built or tested where the project is developed and tested, and a
declaration that nothing tests is not added. That finding is listed and allowed; any other fails.
(`snakemake --lint json` prints text in Snakemake 9.27, so the text is read.)
"""

from __future__ import annotations

import re
import subprocess
import sys

ANSWERED_OTHERWISE = "Specify a conda environment or container for each rule."


def findings(text: str) -> list[tuple[str, str]]:
    """``(where, title)`` of each finding in the linter's text output."""
    found, where = [], ""
    for line in text.splitlines():
        if line.startswith("Lints for "):
            where = line.removeprefix("Lints for ").rstrip(":")
        elif match := re.match(r"    \* (.*?):?$", line):
            found.append((where, match.group(1)))
    return found


def main() -> int:
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], capture_output=True,
                            text=True)
    found = findings(result.stdout + result.stderr)
    if not found and result.returncode != 0:
        print(result.stdout + result.stderr)
        return 1
    allowed = [where for where, title in found if title == ANSWERED_OTHERWISE]
    others = [(where, title) for where, title in found if title != ANSWERED_OTHERWISE]
    print(f"snakemake --lint: {len(allowed)} rules without conda/container (answered by "
          f"requirements.lock), {len(others)} other findings")
    for where, title in others:
        print(f"  {where}: {title}")
    return 1 if others else 0


if __name__ == "__main__":
    sys.exit(main())
