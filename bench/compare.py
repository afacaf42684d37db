"""Compare the results of two runs file by file: which are byte-identical, and by how much the
numbers of the others differ.

    python bench/pipeline.py --keep        # prints the folder of the run it kept
    python bench/compare.py RUN_A RUN_B    # two such folders (or their results/ folders)

This is how a speed change is checked not to change any result: run the pipeline before and
after it, then compare. Every file under results/ is compared byte for byte; for each that
differs, the largest absolute difference among its numbers is reported, and where it is: a key
of a JSON file, a column of a TSV table, a variable of a NetCDF file, a tensor of a model's
weights (read with ``weights_only=True``), a pixel of a PNG. The provenance record that outputs
carry (the commit, package versions and settings that made them) is left out of the comparison:
two runs at different commits make the same numbers in files whose bytes differ there. Prints;
asserts nothing.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


def results_folder(run: Path) -> Path:
    """``run``/results when ``run`` is a run folder, else ``run`` itself."""
    return run / "results" if (run / "results").is_dir() else run


def _json_leaves(value, key: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _json_leaves(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_leaves(item, f"{key}[{index}]")
    else:
        yield key, value


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _largest(differences: dict[str, float]) -> tuple[float, str]:
    """The largest of ``{where: |a - b|}`` (inf where a value changed type or presence)."""
    where = max(sorted(differences), key=lambda name: differences[name], default="")
    return (differences[where], where) if differences.get(where) else (0.0, "")


def _array_difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    if not (np.issubdtype(a.dtype, np.number) and np.issubdtype(b.dtype, np.number)):
        return 0.0 if np.array_equal(a, b) else math.inf
    a, b = a.astype(np.float64), b.astype(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return math.inf
    both = ~np.isnan(a)
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))


def _without_provenance(value):
    return {k: v for k, v in value.items() if k != "provenance"} if isinstance(value, dict) \
        else value


def json_difference(a: Path, b: Path) -> tuple[float, str]:
    leaves_a = dict(_json_leaves(_without_provenance(json.loads(a.read_text()))))
    leaves_b = dict(_json_leaves(_without_provenance(json.loads(b.read_text()))))
    differences = {}
    for key in leaves_a.keys() | leaves_b.keys():
        value_a, value_b = leaves_a.get(key), leaves_b.get(key)
        if value_a != value_b and not (_number(value_a) and _number(value_b)
                                       and math.isnan(value_a) and math.isnan(value_b)):
            both = key in leaves_a and key in leaves_b and _number(value_a) and _number(value_b)
            differences[key] = abs(value_a - value_b) if both else math.inf
    return _largest(differences)


def tsv_difference(a: Path, b: Path) -> tuple[float, str]:
    table_a, table_b = pd.read_csv(a, sep="\t"), pd.read_csv(b, sep="\t")
    if len(table_a) != len(table_b):
        return math.inf, f"rows: {len(table_a)} vs {len(table_b)}"
    return _largest({column: _array_difference(table_a[column].to_numpy(),
                                               table_b[column].to_numpy())
                     if column in table_a and column in table_b else math.inf
                     for column in table_a.columns.union(table_b.columns)})


def _same_attributes(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]))
                                        for k in a)


def _variable_difference(a: xr.DataArray, b: xr.DataArray, block: int = 2**24) -> float:
    """:func:`_array_difference` of two variables read ~``block`` values at a time along their
    first axis, so that a recording larger than memory can be compared."""
    if a.shape != b.shape or a.ndim == 0:
        return _array_difference(a.values, b.values)
    rows = max(1, block // max(1, math.prod(a.shape[1:])))
    return max(_array_difference(a[start:start + rows].values, b[start:start + rows].values)
               for start in range(0, max(a.shape[0], 1), rows))


def netcdf_difference(a: Path, b: Path) -> tuple[float, str]:
    with xr.open_dataset(a, engine="h5netcdf") as data_a, \
         xr.open_dataset(b, engine="h5netcdf") as data_b:
        names = set(data_a.variables) | set(data_b.variables)
        differences = {name: _variable_difference(data_a[name], data_b[name])
                       if name in data_a.variables and name in data_b.variables else math.inf
                       for name in names}
        for name in names & set(data_a.variables) & set(data_b.variables):
            if not _same_attributes(data_a[name].attrs, data_b[name].attrs):
                differences[f"{name} (attributes)"] = math.inf
        if not _same_attributes(_without_provenance(data_a.attrs),
                                _without_provenance(data_b.attrs)):
            differences["(attributes)"] = math.inf
        return _largest(differences)


def weights_difference(a: Path, b: Path) -> tuple[float, str]:
    import torch  # here: comparing runs without model weights needs no torch

    state_a = torch.load(a, map_location="cpu", weights_only=True)
    state_b = torch.load(b, map_location="cpu", weights_only=True)
    return _largest({name: _array_difference(state_a[name].numpy(), state_b[name].numpy())
                     if name in state_a and name in state_b else math.inf
                     for name in state_a.keys() | state_b.keys()})


def png_difference(a: Path, b: Path) -> tuple[float, str]:
    """The largest difference of a pixel's channel value (0–255) between two PNGs."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(a) as image_a, Image.open(b) as image_b:
            pixels_a, pixels_b = np.asarray(image_a), np.asarray(image_b)
    except (UnidentifiedImageError, OSError):
        return math.inf, "not a readable PNG"
    difference = _array_difference(pixels_a, pixels_b)
    return difference, "pixels" if difference else ""


NUMBERS = {".json": json_difference, ".tsv": tsv_difference, ".nc": netcdf_difference,
           ".pt": weights_difference, ".png": png_difference}


def compare(run_a: Path, run_b: Path) -> pd.DataFrame:
    """One row per file under either results/ folder: ``file``, ``status`` (identical,
    same numbers, differs, only in A, only in B) and, for files of numbers whose bytes
    differ, ``largest_difference`` and ``where``."""
    root_a, root_b = results_folder(run_a), results_folder(run_b)
    files_a = {p.relative_to(root_a) for p in root_a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(root_b) for p in root_b.rglob("*") if p.is_file()}
    rows = []
    for name in sorted(files_a | files_b):
        row = {"file": str(name), "status": "identical", "largest_difference": np.nan,
               "where": ""}
        if name not in files_b:
            row["status"] = "only in A"
        elif name not in files_a:
            row["status"] = "only in B"
        elif not filecmp.cmp(root_a / name, root_b / name, shallow=False):
            row["status"] = "differs"
            if name.suffix in NUMBERS:
                row["largest_difference"], row["where"] = NUMBERS[name.suffix](
                    root_a / name, root_b / name)
                if row["largest_difference"] == 0:
                    # other bytes: e.g. the folder name inside a weights archive, 5 vs 5.0
                    row["status"] = "same numbers"
        rows.append(row)
    return pd.DataFrame(rows, columns=["file", "status", "largest_difference", "where"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args()
    table = compare(args.run_a, args.run_b)
    changed = table[table["status"] != "identical"]
    if len(changed):
        print(changed.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    counts = table["status"].value_counts()
    print(f"\n{len(table)} files: " + ", ".join(f"{n} {status}" for status, n in counts.items()))


if __name__ == "__main__":
    main()
