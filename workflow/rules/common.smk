# What every stage shares: the validated config, the library of this checkout, and small getters.
# Each stage's own input functions live in its file; the final targets in targets.smk.
import functools
import json
import os
import re
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

# Jobs run the library of this checkout (workflow/src/v1rsa), the files the rules track, not
# whichever v1rsa is installed: with a second checkout or a non-editable install, an edit here
# must change what runs here. Jobs inherit the environment (also on a cluster).
SOURCE_ROOT = Path(workflow.basedir) / "workflow" / "src"
sys.path.insert(0, str(SOURCE_ROOT))
_PYTHONPATH = os.environ.get("PYTHONPATH")
if (_PYTHONPATH or "").split(os.pathsep)[0] != str(SOURCE_ROOT):
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SOURCE_ROOT), _PYTHONPATH])))

from v1rsa import config_checks  # noqa: E402 -- the library of this checkout, found above

# The config is checked before any job: the schema (one line per mistake, naming its key), its
# defaults, then what a schema cannot say (v1rsa.config_checks, one check per section).
SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
config_checks.check_schema(config, yaml.safe_load(SCHEMA.read_text()))
validate(config, schema=str(SCHEMA))
config_checks.check_config(config)


onstart:
    # Temporary files of jobs killed mid-write (kill -9, a cluster's memory or time limit, a power
    # cut): those of an output made again go when it is written (v1rsa.io.atomic_path), the
    # others here, before the jobs start.
    from snakemake.logging import logger
    from v1rsa.io import remove_stale_temporaries

    _removed = remove_stale_temporaries(["resources", "results"])
    if _removed:
        logger.info(
            f"removed {len(_removed)} temporary file(s) left by killed jobs: "
            + ", ".join(map(str, _removed))
        )


# NumPy asks the kernel for transparent huge pages for large arrays; where the kernel compacts
# memory first, a fresh array costs up to ~2 ms per MB (bench/README.md). Set the variable to 1
# before running Snakemake to keep NumPy's default.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


LIBRARY = SOURCE_ROOT / "v1rsa"
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def library(script):
    """The library files a rule's script runs (v1rsa.sources): inputs of the rule, so that
    editing the library reruns exactly the stages whose code changed, as editing the script does.
    Relative to the working directory, so that moving a finished project reruns nothing.
    """
    from v1rsa.sources import library_files

    return [os.path.relpath(path) for path in library_files(SCRIPTS / f"{script}.py", LIBRARY)]


def one_of(names):
    """A wildcard constraint that matches exactly these names (and nothing when empty)."""
    return "|".join(map(re.escape, names)) if names else "(?!x)x"


def select(section, *keys):
    """The named keys of a config section, as a dict (the params of a stage)."""
    return {key: section[key] for key in keys}


def dataset_entry(dataset):
    return config["datasets"][dataset]


def gpu_request():
    """GPUs a training or extraction job asks for: none when the config forces the CPU."""
    return 0 if config["device"] in ("cpu", "mps") else 1


def encoder_threads():
    """Threads of the encoder's job, the longest of the run. Its results are the same bits on
    any number of threads (v1rsa.encoding), so with 4 cores or more it takes half of them, up to
    4; with fewer, one, so that it starts beside another job instead of waiting for every core;
    one when it trains on a GPU. On a cluster: one if the job asks for a GPU, else 4."""
    if workflow.non_local_exec or workflow.remote_exec:
        return 1 if gpu_request() else 4
    cores = workflow.resource_settings.cores or 1
    if config["device"] in ("cuda", "mps") or cores < 4:
        return 1
    return min(4, cores // 2)
