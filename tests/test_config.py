"""Config files and merging."""

from __future__ import annotations

import pytest

from llbench.config import effective_config, load_config_file, merge
from llbench.errors import ConfigError


def test_toml_and_yaml(tmp_path):
    (tmp_path / "c.toml").write_text("lr = 0.1\n[train]\nepochs = 3\n")
    (tmp_path / "c.yaml").write_text("lr: 0.1\ntrain:\n  epochs: 3\n")
    assert load_config_file(tmp_path / "c.toml") == load_config_file(tmp_path / "c.yaml")
    (tmp_path / "bad.toml").write_text("lr = = 1")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="must end in"):
        (tmp_path / "c.ini").write_text("lr = 1")
        load_config_file(tmp_path / "c.ini")
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "missing.toml")


def test_merge_is_deep_and_strict():
    base = {"lr": 1e-4, "train": {"epochs": 100, "batch": 8}}
    assert merge(base, {"train": {"epochs": 2}}) == {"lr": 1e-4, "train": {"epochs": 2, "batch": 8}}
    assert base["train"]["epochs"] == 100
    with pytest.raises(ConfigError, match="'train.epoch'.*known keys: batch, epochs"):
        merge(base, {"train": {"epoch": 2}})


def test_preset_then_user():
    cfg = effective_config({"a": 1, "b": 2}, {"quick": {"a": 10}}, "quick", {"b": 3})
    assert cfg == {"a": 10, "b": 3}
