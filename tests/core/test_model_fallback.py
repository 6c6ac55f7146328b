"""A broken active model version falls back to the bundled model with a one-line message naming it."""

from __future__ import annotations

import json

import pytest

from model_core import model_store as store_mod, resources
from model_core.checkpoint import load_checkpoint
from model_core.errors import CheckpointError
from model_core.model_store import ModelStore
from retina_desktop.core.model.model_service import ModelHolder


@pytest.fixture
def store(tmp_path, micro_checkpoint_path, monkeypatch):
    # The micro model stands in for the bundled one: the fallback is the point, not the model's size.
    monkeypatch.setattr(resources, "default_model_path", lambda: micro_checkpoint_path)
    monkeypatch.setattr(store_mod, "default_model_path", lambda: micro_checkpoint_path)
    s = ModelStore(tmp_path / "models")
    version = s.add(load_checkpoint(micro_checkpoint_path), {"label": "fine-tuned 1"})
    s.activate(version.id)
    return s


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 3]),
        lambda p: p.write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n" * 20),
    ],
)
def test_a_broken_active_version_falls_back_to_the_bundled_model(store, micro_checkpoint_path, damage):
    damage(store.active().path)
    holder = ModelHolder(store=store)
    info = holder.load()
    assert info.path == micro_checkpoint_path
    assert "fine-tuned 1" in holder.notice and "bundled default model" in holder.notice and "\n" not in holder.notice
    assert holder.checkpoint_path() == micro_checkpoint_path  # the cache key follows the model really used


def test_a_damaged_store_record_is_said_not_silent(store, micro_checkpoint_path):
    (store.root / "active.json").write_text("{not json")
    holder = ModelHolder(store=store)
    assert holder.load().path == micro_checkpoint_path
    assert "active.json" in holder.notice and "unreadable" in holder.notice
    (store.root / "active.json").write_text(json.dumps({"active": "v999-gone"}))
    holder = ModelHolder(store=store)
    holder.load()
    assert "v999-gone" in holder.notice


def test_an_explicit_broken_checkpoint_still_fails(tmp_path, store):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nonsense")
    with pytest.raises(CheckpointError):
        ModelHolder(bad, store=store).load()
