"""The normative CNN's two jobs, side by side: training and receptive fields, before and after.

At the default config (config/config.yaml), on ``--threads`` torch threads (default 1, as the
rules run them):

- ``fit_normative``: 1000 training gratings, 25 epochs of 10 batches of 100, a 1000-grating
  validation pass per epoch, then 1000 test gratings (the stimulus sets are drawn as the
  ``gratings`` rule draws them);
- ``grating_receptive_fields`` of that network: 8 gratings × 768 patch centres × 8 draws =
  49,152 occluded images, layers conv, pool, fc, out.

"before" is ``v1rsa/normative.py`` and ``v1rsa/receptive_fields.py`` as of ``--before``, read
with ``git show`` and run as modules (their network has ``nn.MaxPool2d``, scores 1000 images in
one pass, and runs 1024 occluded images per pass). The notes say whether before and after give
the same weights, history, metrics and maps. Then the pieces: scoring in one pass or in passes
of ``EVALUATION_BATCH_SIZE``; ``nn.MaxPool2d`` or ``TileMaxPool2d`` without autograd; the
network on 1024 occluded images in one pass or in passes of ``CPU_PASS_SIZE``.

    python bench/normative.py [--repeats 2] [--threads 1] [--before REVISION] [--skip-before]

Times are wall-clock seconds, the best of ``--repeats`` rounds (before and after alternate within
a round, so both see the same machine). On a shared machine, the load average printed at the top
and bottom says how much the numbers may be inflated.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: the last version of both modules before the speed changes (one pass per scoring and per
#: occlusion batch, nn.MaxPool2d)
BEFORE_REVISION = "ab97a6de6574d044f485f51c3c2c0e369e327b04"
REPOSITORY = Path(__file__).resolve().parents[1]
TILT_SETS = ("tilt_train", "tilt_validation", "tilt_test")  # as workflow/rules/models.smk
ARCHITECTURE = {"n_channels": 6, "kernel_size": 7, "pool_size": 8, "hidden": 10,
                "handmade_init": True, "dropout": 0.0, "batch_norm": False}
TRAINING = {"lr": 5e-4, "momentum": 0.99, "batch_size": 100, "n_epochs": 25}
MAPPING = {"n_gratings": 8, "sf": 1 / 28, "res": 0.1, "patch_size": 4, "stride": 2,
           "noise": "uniform", "n_draws": 8, "threshold": 0.25, "seed": 0, "batch_size": 1024}
LAYERS = ["conv", "pool", "fc", "out"]


def best_of(function, repeats: int):
    """(shortest wall seconds over ``repeats`` calls, the last result)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return min(seconds), result


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def load_before(revision: str, name: str) -> types.ModuleType:
    """``v1rsa/{name}.py`` as of a git revision, as a module of its own (it imports the
    current v1rsa's other modules)."""
    path = f"workflow/src/v1rsa/{name}.py"
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=REPOSITORY,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"{name}_{revision[:7]}")
    exec(compile(source, f"{revision[:7]}:{path}", "exec"), module.__dict__)
    return module


def stimulus_sets():
    from v1rsa import stimuli

    sets = []
    for index, _ in enumerate(TILT_SETS):
        angles = stimuli.random_tilt_orientations(1000, np.random.default_rng([12, index]))
        sets.append(stimuli.stimulus_set(angles, sf=1 / 28, res=0.1,
                                         labels=stimuli.tilt_labels(angles)))
    return sets


def max_difference(first: dict, second: dict) -> float:
    return max(float(np.abs(np.asarray(first[key]) - np.asarray(second[key])).max())
               for key in first)


def whole_jobs(versions: dict, repeats: int) -> None:
    """fit_normative and grating_receptive_fields, each version in turn within a round."""
    from v1rsa import normative

    sets = stimulus_sets()
    seconds = {(job, label): [] for job in ("fit_normative", "receptive_fields")
               for label in versions}
    trained, fields = {}, {}
    for _ in range(repeats):
        for label, (normative_module, _) in versions.items():
            start = time.perf_counter()
            trained[label] = normative_module.fit_normative(
                *sets, arch=ARCHITECTURE, seed=12, progress=False, **TRAINING)
            seconds["fit_normative", label].append(time.perf_counter() - start)
        # every version maps the same weights (after's), in its own network class
        weights = trained["after"][0].state_dict()
        for label, (normative_module, rf_module) in versions.items():
            network = normative_module.build(normative.architecture(trained["after"][0]))
            network.load_state_dict(weights)
            start = time.perf_counter()
            fields[label] = rf_module.grating_receptive_fields(network, LAYERS, **MAPPING)
            seconds["receptive_fields", label].append(time.perf_counter() - start)
    print(f"  {'job':<52} {'seconds':>8}")
    for (job, label), values in seconds.items():
        print(f"  {job + ' (' + label + ')':<52} {min(values):>8.2f}")
    model, history, metrics = trained["after"]
    print(f"  after: test accuracy {metrics['test_accuracy']}, test loss "
          f"{metrics['test_loss']:.6g}")
    if "before" in versions:
        old_model, old_history, old_metrics = trained["before"]
        weights = max_difference(model.state_dict(), old_model.state_dict())
        maps = float(np.abs(fields["after"]["discrepancy"].values
                            - fields["before"]["discrepancy"].values).max())
        print(f"  before vs after: max |weights| difference {weights:.3g}; history identical: "
              f"{history == old_history}; metrics identical: {metrics == old_metrics}; max "
              f"|maps| difference {maps:.3g}; fields identical: "
              f"{fields['after'].identical(fields['before'])}")


def pieces(repeats: int) -> None:
    """The three changes, one at a time, on the course's CNN (hand-made filters; the times do
    not depend on the weights)."""
    from v1rsa import normative
    from v1rsa import receptive_fields as rf
    from v1rsa.activations import record_activations

    torch.manual_seed(0)
    model = normative.TiltCNN(seed=12).eval()
    images = torch.from_numpy(stimulus_sets()[1]["image"].values)  # 1000 gratings
    rows = []
    with torch.no_grad():
        batch = normative.EVALUATION_BATCH_SIZE
        one, logits = best_of(lambda: model(images), repeats)
        passes, chunked = best_of(lambda: torch.cat([model(images[start:start + batch])
                                                     for start in range(0, 1000, batch)]), repeats)
        rows.append((f"score 1000 gratings: one pass / passes of {batch}", one, passes,
                     float((logits - chunked).abs().max())))
        conv = torch.relu(model.conv(images[:rf.CPU_PASS_SIZE, None]))
        stock, expected = best_of(lambda: nn.functional.max_pool2d(conv, 8), repeats)
        tiles, pooled = best_of(lambda: model.pool(conv), repeats)
        rows.append((f"pool {tuple(conv.shape)}: max_pool2d / TileMaxPool2d", stock, tiles,
                     float((expected - pooled).abs().max())))
    occluded = images[torch.arange(1024) % len(images)]  # a copy
    occluded[:, 20:24, 30:34] = torch.rand(1024, 4, 4)
    one, whole = best_of(lambda: record_activations(model, occluded, LAYERS, batch_size=1024),
                         repeats)
    passes, split = best_of(lambda: record_activations(model, occluded, LAYERS,
                                                       batch_size=rf.CPU_PASS_SIZE), repeats)
    rows.append((f"network on 1024 occluded: one pass / passes of {rf.CPU_PASS_SIZE}", one,
                 passes, max_difference(whole, split)))
    print(f"  {'piece':<58} {'before':>8} {'after':>8} {'ratio':>6} {'max |diff|':>10}")
    for label, before, after, difference in rows:
        print(f"  {label:<58} {before * 1e3:>6.1f}ms {after * 1e3:>6.1f}ms "
              f"{before / after:>6.2f} {difference:>10.3g}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default=BEFORE_REVISION,
                        help="git revision of v1rsa/normative.py and receptive_fields.py to "
                             "time as 'before'")
    parser.add_argument("--skip-before", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from v1rsa import normative
    from v1rsa import receptive_fields as rf

    versions = {"after": (normative, rf)}
    if not args.skip_before:
        versions["before"] = (load_before(args.before, "normative"),
                              load_before(args.before, "receptive_fields"))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} on {args.threads} thread(s), load average {load_average()}"
          f"{'' if args.skip_before else f'; before: {args.before[:7]}'}")
    print("\nwhole jobs (default config)")
    whole_jobs(versions, args.repeats)
    print(f"\npieces (best of {5 * args.repeats} rounds)")
    pieces(5 * args.repeats)
    print(f"\n# load average {load_average()}")


if __name__ == "__main__":
    main()
