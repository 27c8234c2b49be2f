"""The flags of a sampled evaluation: ``--sample``, ``--seed``, ``--target-ci``."""

from __future__ import annotations

import argparse


def add_sample_arguments(command: argparse.ArgumentParser) -> None:
    """Add the sampling flags to ``mike eval``."""
    command.add_argument("--sample", type=int, metavar="N", help="N items per task from a "
                         "seeded permutation of positions: the same items in every language "
                         "and for every model (a larger N later adds items and re-uses every "
                         "cached answer)")
    command.add_argument("--seed", type=int, default=0, help="seed of the --sample / "
                         "--target-ci permutation (default 0; recorded in the manifest)")
    command.add_argument("--target-ci", type=float, metavar="W", help="evaluate in rounds "
                         "along the permutation until each task's 95%% interval of the "
                         "average over target languages is within +/- W points, per metric "
                         "(or its items, or --sample N, run out)")
