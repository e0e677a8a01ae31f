"""How hard the property tests try: a quick pass in `make test`, the full counts in
`make test-slow` (``RUNCOMFY_TESTS_THOROUGH=1``), which CI runs too.

Both profiles drop Hypothesis's per-example deadline and its too-slow health check: on a
loaded machine those fail on the clock, not on the code.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

THOROUGH = os.environ.get("RUNCOMFY_TESTS_THOROUGH", "") not in ("", "0")

_RELAXED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("quick", max_examples=20, **_RELAXED)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=200, **_RELAXED)  # type: ignore[arg-type]
settings.load_profile("thorough" if THOROUGH else "quick")


def examples(full: int, quick: int | None = None) -> int:
    """``full`` examples in the thorough run; in the quick one ``quick``, by default a sixth of
    them (at least 10)."""
    if THOROUGH:
        return full
    return min(full, max(10, full // 6)) if quick is None else quick
