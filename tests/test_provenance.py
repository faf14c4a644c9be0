"""Every number in the embedded Devon default is sourced, derived or marked as an assumption."""

from __future__ import annotations

import csv
import fnmatch
from pathlib import Path
from typing import Any

from model.io import default_scenario_path, read_yaml_file

PROVENANCE = Path(default_scenario_path()).with_name("provenance.csv")
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "figures.csv"


def leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in leaves(v, f"{prefix}{k}.")]
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        return [p for i, v in enumerate(node) for p in leaves(v, f"{prefix}{i}.")]
    return [prefix[:-1]]


def rows() -> list[dict[str, str]]:
    with PROVENANCE.open() as f:
        return list(csv.DictReader(f))


def test_every_default_value_has_provenance() -> None:
    patterns = [r["key"] for r in rows()]
    data = read_yaml_file(default_scenario_path())
    missing = [p for p in leaves(data) if not any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
    assert missing == []


def test_provenance_rows_are_complete_and_match_something() -> None:
    data_paths = leaves(read_yaml_file(default_scenario_path()))
    for r in rows():
        assert r["kind"] in {"source", "assumption", "derived", "label", "setting"}, r
        assert r["note"].strip(), r
        assert any(fnmatch.fnmatchcase(p, r["key"]) for p in data_paths), f"stale row {r['key']}"
        if r["kind"] == "source":
            assert r["source"] not in ("", "-"), r


def test_named_reference_keys_exist() -> None:
    """A provenance row that cites a reference key must cite one that exists in shared/reference."""
    if not REFERENCE.exists():
        import pytest

        pytest.skip(f"{REFERENCE} not present beside the checkout")
    with REFERENCE.open() as f:
        keys = {r["key"] for r in csv.DictReader(f)}
    import re

    for r in rows():
        for token in re.findall(r"\b(?:devon|national)_[a-z0-9_]+", r["source"]):
            stem = token.rstrip("_")
            assert stem in keys or any(k.startswith(stem) for k in keys), (r["key"], token)
