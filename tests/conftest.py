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


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A default model trained once per session by the real CLI (serving.trained_model)."""
    from serving import trained_model

    return trained_model(tmp_path_factory)


@pytest.fixture(scope="module")
def server(model_dir):
    """`nanocnn serve` on that model, as a process on a free port of 127.0.0.1, stopped after the module."""
    from serving import serve_process

    with serve_process(model_dir, "--limit-test", "2000", "--threads", "2") as running:
        yield running


@pytest.fixture(scope="module")
def digits():
    """MNIST's first 8 test digits, (8, 28, 28) uint8, white on black."""
    from nanocnn.data import bundled_path

    return np.load(bundled_path())["testimages"][:8]


@pytest.fixture(scope="module")
def mpiexec():
    """The mpiexec of mpi4py's MPI, for the distributed tests (mpi_jobs.py)."""
    from mpi_jobs import mpiexec_or_skip

    return mpiexec_or_skip()


@pytest.fixture(scope="module")
def browser():
    """Chromium through Playwright (browsing.py), or a skip (a failure under NANOCNN_REQUIRE_BROWSER=1)."""
    from browsing import ARGS, CHROMIUM, missing

    reason = missing()
    if reason:
        if os.environ.get("NANOCNN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NANOCNN_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
