"""Hypothesis settings profiles: how hard the kit searches for a counterexample.

Chosen with ``--hypothesis-profile NAME`` or the ``CONFORMANCE_PROFILE`` environment
variable; ``ci`` when ``CI`` is set, ``dev`` otherwise. Tests never hard-code settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

ENV_VAR = "CONFORMANCE_PROFILE"
# Servers are real and examples touch the network: wall-clock deadlines would only measure
# the machine's load, and the kit bounds every wait itself.
_COMMON = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
PROFILES = {
    # Quick feedback while developing an implementation.
    "dev": settings(max_examples=30, **_COMMON),
    # Reproducible runs: the same examples on every run, no example database.
    "ci": settings(max_examples=60, derandomize=True, database=None, **_COMMON),
    # The kit's own self-tests: enough to catch the broken fixtures, little more.
    "quick": settings(max_examples=12, derandomize=True, database=None, **_COMMON),
    # The self-tests' sweep of every broken fixture over the whole catalog: each contract's
    # explicit examples and a few generated ones, which catch every fixture (the sweep
    # shows it) at a third of the quick profile's cost.
    "sweep": settings(max_examples=4, derandomize=True, database=None, **_COMMON),
    # Before a release: a long search.
    "thorough": settings(max_examples=500, **_COMMON),
}


def register() -> None:
    """Make every profile known to Hypothesis."""
    for name, profile in PROFILES.items():
        settings.register_profile(name, profile)


def default_name() -> str:
    """The profile to load when ``--hypothesis-profile`` was not given."""
    name = os.environ.get(ENV_VAR) or ("ci" if os.environ.get("CI") else "dev")
    if name not in PROFILES:
        raise ValueError(f"{ENV_VAR}={name}: expected one of {', '.join(PROFILES)}")
    return name


def for_slow_scenarios(divisor: int = 10) -> settings:
    """The current profile with fewer examples, for scenarios that take a second each."""
    current = settings.default
    return settings(current, max_examples=max(2, current.max_examples // divisor))


def for_state_machines(steps: int = 20) -> settings:
    """The current profile for state machines run against a live server: as many runs as
    the profile has examples, each of at most ``steps`` steps (Hypothesis' default: 50)."""
    return settings(settings.default, stateful_step_count=steps)
