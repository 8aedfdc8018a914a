"""Shared settings of the property-based fuzz suites (tests/core/test_fuzz_*.py): derandomized (the same examples
on every run, so CI is reproducible and needs no example database) and bounded so that the three suites together
stay well under a minute on 2 cores. tools/fuzz_readers.py is the long run."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per example (pytest's tmp_path is per test, not per hypothesis example)."""
    with tempfile.TemporaryDirectory(prefix="artflow-fuzz-") as d:
        yield Path(d)


SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
# Any JSON document: what a forged config.json or manifest.json may hold.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30)


def merged(base: dict, changes: dict) -> dict:
    """`base` (a parsed valid file) with `changes` laid over its top level (so that most examples get past the
    first checks and reach the deeper ones)."""
    return {**json.loads(json.dumps(base)), **changes}
