"""Shared pytest fixtures: the read-only data set beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Return ``../shared/data`` (or ``$STREAMGENRE_SHARED_DATA``) without checking it exists."""
    override = os.environ.get("STREAMGENRE_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def require_shared(*relative: str) -> Path:
    """Return a path under the shared data dir, or skip (fail under STREAMGENRE_REQUIRE_DATA=1).

    Parameters
    ----------
    *relative
        Path components below ``../shared/data``.
    """
    path = shared_data_dir().joinpath(*relative)
    if not path.exists():
        reason = f"shared test data not found: {path} (place the data set at ../shared/data)"
        if os.environ.get("STREAMGENRE_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; STREAMGENRE_REQUIRE_DATA=1 makes this a failure", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory (skips or fails when it is absent)."""
    return require_shared()


@pytest.fixture(scope="session")
def gtzan_dir() -> Path:
    """The 100-clip GTZAN subset."""
    return require_shared("gtzan")


@pytest.fixture(scope="session")
def music_fixtures() -> Path:
    """Real music fixture files."""
    return require_shared("fixtures", "music")
