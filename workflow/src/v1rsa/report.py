"""Pages of the HTML report besides figures: the RSA and CKA tables, rounded, and the record of
how the run was made. Each is one self-contained HTML page (the report shows it inline) that
carries its own provenance (:mod:`v1rsa.provenance`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from v1rsa.provenance import html_meta

STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th { border-bottom: 2px solid #888; }
td.text, th.text { text-align: left; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; }
p.note { color: #555; max-width: 60em; }
"""


def page(title: str, body: str, provenance: Mapping | None = None) -> str:
    """A complete HTML page: ``title`` as heading, ``body`` (HTML) below it."""
    meta = "" if provenance is None else html_meta(provenance) + "\n"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{meta}'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h2>{html.escape(title)}</h2>\n{body}\n</body>\n</html>\n")


def number(value, digits: int = 3) -> str:
    """``value`` rounded to ``digits`` decimals, with a typographic minus; "–" for NaN."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{digits}f}".replace("-", "−")


def p_value(value, smallest: float | None = None) -> str:
    """A p or q value: 3 significant digits, or "< 0.001" below 0.001 (or "≤ smallest" at
    the smallest value the number of permutations can give)."""
    if value is None or np.isnan(value):
        return "–"
    if smallest is not None and value <= smallest * (1 + 1e-9):
        return f"≤ {smallest:.2g}"
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def interval(low, high, digits: int = 3) -> str:
    return f"{number(low, digits)} – {number(high, digits)}"


def html_table(rows: pd.DataFrame, text_columns=()) -> str:
    """``rows`` (cells already formatted as strings) as an HTML table; ``text_columns`` are
    aligned left, the others (numbers) right."""
    head = "".join(f'<th class="{"text" if c in text_columns else "number"}">{html.escape(c)}</th>'
                   for c in rows.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"text" if c in text_columns else "number"}">'
                         f"{html.escape(str(row[c]))}</td>" for c in rows.columns) + "</tr>\n"
        for _, row in rows.iterrows())
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def rsa_table_page(table: pd.DataFrame, provenance: Mapping | None = None) -> str:
    """``rsa.tsv`` as a page: one table per comparator, one row per network layer, with the
    similarity to V1 and its bootstrap CI, the permutation p and FDR q, and the noise ceiling,
    rounded to 3 decimals (the TSV keeps every digit)."""
    parts = []
    for comparator, rows in table.groupby("comparator", sort=False):
        smallest = 1.0 / (rows["n_permutations"].iloc[0] + 1) if "n_permutations" in rows else None
        ci_percent = f"{100 * rows['ci_level'].iloc[0]:g}%" if "ci_level" in rows else "CI"
        shown = pd.DataFrame({
            "network": rows["network"].astype(str),
            "seed": _seed_labels(rows),
            "layer": rows["layer"].astype(str),
            "similarity": [number(v) for v in rows["value"]],
            f"{ci_percent} CI": [interval(lo, hi) for lo, hi in zip(rows["ci_low"],
                                                                      rows["ci_high"],
                                                                      strict=True)],
            "p": [p_value(v, smallest) for v in rows["p"]],
            "q (FDR)": [p_value(v, smallest) for v in rows["q"]],
            "noise ceiling": [interval(lo, hi) for lo, hi in zip(rows["noise_ceiling_lower"],
                                                                  rows["noise_ceiling_upper"],
                                                                  strict=True)],
        })
        if {"p_zero", "p_noise", "value_fold_mean"} <= set(rows.columns):
            shown["p (t, > 0)"] = [p_value(v) for v in rows["p_zero"]]
            shown["fold mean"] = [number(v) for v in rows["value_fold_mean"]]
            shown["p (t, vs ceiling)"] = [p_value(v) for v in rows["p_noise"]]
        parts.append(f"<h3>{html.escape(str(comparator))}</h3>\n"
                     + html_table(shown, text_columns=("network", "seed", "layer")))
    first = table.iloc[0]
    note = (f"Each layer's RDM compared with V1's over {int(first['n_conditions'])} conditions; "
            f"CI from {int(first['n_bootstrap'])} bootstrap resamples of the conditions, p from "
            f"{int(first['n_permutations'])} permutations (one-sided, against no similarity), q "
            "the Benjamini–Hochberg FDR over the single-seed rows of the table (and, apart, over "
            "the means over seeds); the noise ceiling from V1's own trial folds (lower – upper). "
            "The t-tests (rsatoolbox's, on the bootstrap variance): the similarity against zero "
            "(one-sided), and the mean comparison with each fold's RDM against the lower bound of "
            "the ceiling (two-sided). Every digit is in rsa.tsv beside this page, the pairwise "
            "comparisons in pairwise.tsv.")
    return page("RSA: similarity of each layer to V1",
                f'<p class="note">{html.escape(note)}</p>\n' + "\n".join(parts), provenance)


def _seed_labels(rows: pd.DataFrame) -> list[str]:
    """The seed of each row, or "mean of S" for a row that averages S seeds."""
    seeds = pd.to_numeric(rows["network_seed"], errors="coerce")
    counts = rows["n_seeds"] if "n_seeds" in rows else pd.Series(1, index=rows.index)
    return [f"mean of {int(n)}" if n > 1 else (str(int(seed)) if np.isfinite(seed) else "–")
            for seed, n in zip(seeds, counts, strict=True)]


def cka_table_page(table: pd.DataFrame, provenance: Mapping | None = None) -> str:
    """``cka.tsv`` as a page: linear CKA between V1's and each layer's responses, rounded."""
    shown = pd.DataFrame({
        "network": table["network"].astype(str),
        "seed": table["network_seed"].astype(str),
        "layer": table["layer"].astype(str),
        "CKA": [number(v) for v in table["value"]],
    })
    note = ("Linear centred kernel alignment (Kornblith et al. 2019) between V1's "
            "condition-averaged responses and each layer's activations over the same "
            "conditions: 0 for unrelated representations, 1 for the same up to rotation and "
            "scale. Every digit is in cka.tsv beside this page.")
    return page("CKA: each layer against V1",
                f'<p class="note">{html.escape(note)}</p>\n'
                + html_table(shown, text_columns=("network", "seed", "layer")), provenance)


def run_record_page(run: Mapping, provenance: Mapping | None = None) -> str:
    """The record of :func:`v1rsa.provenance.run_record` as a page: the config files, the code
    and packages that made the outputs (with how many outputs each), and the whole config."""
    files = pd.DataFrame({
        "config file (in the order given)": [entry["path"] for entry in run["config_files"]],
        "sha256": [entry["sha256"] for entry in run["config_files"]],
    })
    parts = ["<h3>Config files</h3>",
             '<p class="note">Later files override earlier ones key by key; the resulting '
             "configuration is at the end of this page.</p>",
             html_table(files, text_columns=tuple(files.columns))]
    for made_by in run["made_by"]:
        outputs = made_by["outputs"]
        parts.append(f"<h3>Code: {html.escape(str(made_by['commit']))}</h3>")
        parts.append(f'<p class="note">made {len(outputs)} of the outputs that carry a record, '
                     f"e.g. {html.escape(outputs[0])}</p>")
        packages = pd.DataFrame({"package": list(made_by["packages"]),
                                 "version": list(made_by["packages"].values())})
        parts.append(html_table(packages, text_columns=("package", "version")))
    if run["without_record"]:
        parts.append('<p class="note">Outputs without room for a record (tables, weights), '
                     "made by the same jobs as the files beside them: "
                     + html.escape(", ".join(run["without_record"])) + "</p>")
    parts.append("<h3>Configuration</h3>")
    parts.append(f"<pre>{html.escape(json.dumps(run['config'], indent=2, sort_keys=True))}</pre>")
    return page("How this run was made", "\n".join(parts), provenance)
