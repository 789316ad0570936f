"""Fixtures shared by every test file (helpers live in helpers.py)."""

import os
import zlib

import numpy as np
import pytest
from hypothesis import settings


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so every test is reproducible on its own."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


# Hypothesis: how many generated examples each property test runs, set per profile (HYPOTHESIS_PROFILE):
# "default" for every run (reproducible: the same examples each time), "thorough" for a long search.
settings.register_profile("default", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
