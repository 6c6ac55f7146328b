"""Fixtures of the save tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sample_workspaces import make_workspace


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A workspace of three synthetic photos, img_00 to img_02, with no mask saved yet."""
    return make_workspace(tmp_path / "w", 3)
