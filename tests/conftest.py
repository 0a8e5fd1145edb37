"""Shared fixtures. Integration fixtures use the real thing: the Docker engine, the builder image,
Debian's linux-source-6.12 tree (or KMATRIX_TEST_KERNEL=<tree>). When one is missing, the tests
fail with the one-line reason: CI (`.ci/run`) installs all of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kmatrix_cache() -> Path:
    from harness import source

    path = source.cache_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def kernel_tree(kmatrix_cache: Path) -> Path:
    """A clean, read-only-mounted kernel tree (Debian's linux-source-6.12 by default)."""
    from harness import source

    return source.resolve(os.environ.get("KMATRIX_TEST_KERNEL", "debian"), kmatrix_cache).path


@pytest.fixture(scope="session")
def builder_image(kmatrix_cache: Path) -> str:
    from harness import image
    from harness.container import connect

    with FileLock(str(kmatrix_cache / "image.lock")):
        return image.ensure_image(connect(), image.read_spec(), kmatrix_cache)


@pytest.fixture(scope="session")
def docker_runner(builder_image: str):
    from harness.container import DockerRunner

    return DockerRunner(builder_image)


@pytest.fixture(scope="session")
def work_cache(kmatrix_cache: Path) -> Path:
    """Persistent output trees for integration tests (warm across runs on one machine)."""
    path = kmatrix_cache / "test-work"
    path.mkdir(parents=True, exist_ok=True)
    return path
