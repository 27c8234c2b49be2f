"""Prompt strategies that behave differently in a helper process, for the tests of
:mod:`mike_sdk.parallel`: imported by the test and, by module name, by each helper.

A helper starts in a second or two; a small test run is over sooner. So the run's own
process waits, at its first prompt, until a helper has rendered one (a marker file),
which makes sure that a helper takes part whatever the machine's load. Set
``MIKE_TEST_RUN_PID`` to the run's process id and ``MIKE_TEST_MARKER`` to the marker's
path; without them, these are the zero-shot strategy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.prompts.mike import ZeroShot
from mike_sdk.strategy import STRATEGIES, PromptCase

#: How long the run's process waits for a helper before it gives up (a failing test).
WAIT_S = 120.0


def in_helper() -> bool:
    """Whether this process is a helper of the test's run."""
    run = os.environ.get("MIKE_TEST_RUN_PID")
    return run is not None and run != str(os.getpid())


class _WaitsForHelper(ZeroShot):
    def render(self, case: PromptCase, abilities: Abilities) -> GenerationRequest:
        marker = os.environ.get("MIKE_TEST_MARKER")
        if marker is not None:
            if in_helper():
                Path(marker).touch()
                self.in_helper()
            elif not Path(marker).exists():
                deadline = time.monotonic() + WAIT_S
                while not Path(marker).exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                Path(marker).touch()  # waited once, whatever came of it
            if not in_helper():
                self.in_run()
        return super().render(case, abilities)

    def in_helper(self) -> None:
        """What this strategy does in a helper, at each prompt (here: nothing)."""

    def in_run(self) -> None:
        """What it does in the run's process, once a helper started (here: nothing)."""


@STRATEGIES.register("test-waits-for-helper")
class WaitsForHelper(_WaitsForHelper):
    """Zero-shot; the run's process waits for a helper to start."""


@STRATEGIES.register("test-dies-in-helper")
class DiesInHelper(_WaitsForHelper):
    """Zero-shot; a helper dies at its first prompt (as if killed)."""

    def in_helper(self) -> None:
        os._exit(3)


@STRATEGIES.register("test-fails-in-helper")
class FailsInHelper(_WaitsForHelper):
    """Zero-shot; a helper raises at its first prompt."""

    def in_helper(self) -> None:
        raise RuntimeError("rendering broke in the helper")


@STRATEGIES.register("test-fails-in-run")
class FailsInRun(_WaitsForHelper):
    """Zero-shot; the run's process raises once a helper started."""

    def in_run(self) -> None:
        raise RuntimeError("rendering broke in the run")
