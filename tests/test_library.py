"""v1rsa as a library: the RSA part on one's own arrays, with the base install only."""

import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import v1rsa

SOURCE_ROOT = Path(v1rsa.__file__).resolve().parents[1]

# A fresh Python in which the workflow extra's packages cannot be imported, as after
# `pip install v1rsa` without [workflow].
WITHOUT_WORKFLOW_EXTRA = """
import importlib.abc
import sys

ABSENT = {"torch", "snakemake", "sklearn", "pooch", "yaml"}


class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (absent in this test)")
        return None


sys.meta_path.insert(0, Absent())
"""


def run_without_workflow_extra(code: str) -> subprocess.CompletedProcess:
    program = WITHOUT_WORKFLOW_EXTRA + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SOURCE_ROOT), "PATH": "/usr/bin:/bin"})


def test_rdms_rsa_and_their_figures_work_without_torch_or_snakemake():
    result = run_without_workflow_extra("""
        import numpy as np
        from v1rsa import rdm, rsa
        from v1rsa.figures import rdms, style
        # the data stages' modules too: one's own recording through the same preprocessing
        from v1rsa import decoding, io, load, preprocess, simulate, stimuli, tuning  # noqa: F401

        try:
            import torch  # noqa: F401
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("torch was importable: the test does not test anything")

        rng = np.random.default_rng(0)
        v1 = rng.normal(size=(12, 300))
        layer = v1[:, :40] + rng.normal(size=(12, 40))
        rdm_v1, rdm_layer = rdm.correlation_distance(v1), rdm.correlation_distance(layer)
        print("spearman", round(rsa.compare(rdm_v1, rdm_layer, "spearman"), 6))
        table, _ = rsa.rsa_table(rdm_v1, None, {"layer": rdm_layer}, ["pearson"],
                                 n_bootstrap=50, n_permutations=50, seed=0, ci_level=0.95)
        print("rows", len(table))
        fig, axes = style.figure(3.0, 1, 2)
        rdms.plot_rdm_matrix(axes[0, 0], rdm_v1, [f"s{i}" for i in range(12)])
        try:
            rdms.plot_mds(axes[0, 1], rdm_v1)
        except ImportError as err:
            print("mds:", err)
        loaded = sorted(name for name in sys.modules
                        if name.split(".")[0] in {"torch", "snakemake", "sklearn", "pooch"})
        print("loaded", loaded)
    """)
    assert result.returncode == 0, result.stderr
    assert "rows 1" in result.stdout
    assert "spearman" in result.stdout
    assert "mds: mds_embedding needs scikit-learn: pip install scikit-learn" in result.stdout
    assert "loaded []" in result.stdout


def test_the_test_above_would_see_an_import_of_torch():
    result = run_without_workflow_extra("from v1rsa import training")
    assert result.returncode != 0
    assert "No module named 'torch' (absent in this test)" in result.stderr


def test_the_package_docstring_lists_every_module():
    listed = v1rsa.__doc__
    modules = [module.name for module in pkgutil.iter_modules(v1rsa.__path__)
               if not module.name.startswith("_")]
    assert modules, "no modules found"
    missing = [name for name in modules if f"``{name}``" not in listed]
    assert not missing, f"v1rsa/__init__.py does not list {missing}"


def test_scripts_read_netcdf_through_the_checked_reader():
    """Every script reads NetCDF with io.read_netcdf (clear errors naming the file and the
    variable), never xarray directly."""
    scripts = SOURCE_ROOT.parent / "scripts"
    direct = [path.name for path in sorted(scripts.glob("*.py"))
              if re.search(r"xr\.(load|open)_(mf)?dataset", path.read_text())]
    assert not direct, f"scripts reading NetCDF without v1rsa.io.read_netcdf: {direct}"
