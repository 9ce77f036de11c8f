"""Engine-test fixtures: ``forget_models`` for the tests that load random-weights trained models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autovoice.models.cache import CACHE


@pytest.fixture
def forget_models() -> Iterator[None]:
    """The test's random models leave the process-wide cache when it ends (keeps the suite's memory flat)."""
    yield
    CACHE.drop("encoder:", "rvc:", "sovits:")
