"""Shared fixtures: the embedded Devon default as a plain mapping, and a writer for scenario files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.io import default_scenario_path, read_yaml_file

_DEVON = read_yaml_file(default_scenario_path())


@pytest.fixture
def devon_dict() -> dict[str, Any]:
    """A fresh deep copy of the Devon default mapping, safe to mutate."""
    return copy.deepcopy(_DEVON)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Write a mapping (or raw text) to a YAML file in tmp_path and return its path."""

    def _write(data: Any, name: str = "scenario.yaml") -> Path:
        p = tmp_path / name
        p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return p

    return _write


@pytest.fixture(scope="session")
def devon_run() -> Any:
    """One real run of the whole Devon default (every year, 20 Monte Carlo paths, the LP exported),
    shared by every test that only reads a full run's results: it is the suite's costliest step."""
    from model.engine import run_scenario
    from model.io import load_scenario

    return run_scenario(load_scenario(None), paths=20, export_lp=True)


@pytest.fixture
def app_module() -> Any:
    """app.py freshly imported as a module: its page functions and constants (``main`` runs only
    as ``__main__``, as streamlit and AppTest run it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sendplan_app", Path(__file__).resolve().parents[1] / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
