"""Scenario loading: safe YAML, extends chains, deep merge, --set overrides and hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.io import (
    MAX_FILE_BYTES,
    ScenarioError,
    apply_overrides,
    atomic_folder,
    deep_merge,
    load_scenario,
    load_scenario_text,
    parse_yaml_text,
)


def problems(exc: pytest.ExceptionInfo[ScenarioError]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in exc.value.problems]


def test_deep_merge_merges_mappings_and_replaces_lists() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    over = {"a": {"y": [3], "z": 2}}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": [3], "z": 2}, "b": 1}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs untouched


def test_extends_chain_relative_to_file(tmp_path: Path, devon_dict, write_yaml) -> None:
    write_yaml(devon_dict, "base.yaml")
    (tmp_path / "sub").mkdir()
    write_yaml({"extends": "../base.yaml", "demand": {"growth": 0.14}}, "sub/mid.yaml")
    write_yaml({"extends": "mid.yaml", "meta": {"horizon_years": 5}}, "sub/leaf.yaml")
    r = load_scenario(tmp_path / "sub" / "leaf.yaml")
    assert r.scenario.demand.growth == 0.14
    assert r.scenario.meta.horizon_years == 5
    assert r.scenario.meta.name == devon_dict["meta"]["name"]
    assert r.slug == "leaf"
    assert "extends" not in r.resolved


def test_extends_embedded_default(write_yaml) -> None:
    p = write_yaml({"extends": "embedded:devon", "run": {"paths": 7}}, "small.yaml")
    r = load_scenario(p)
    assert r.scenario.run.paths == 7
    assert r.scenario.meta.la_name == "Devon County Council"


def test_cyclic_extends_is_reported(write_yaml) -> None:
    write_yaml({"extends": "b.yaml"}, "a.yaml")
    b = write_yaml({"extends": "a.yaml"}, "b.yaml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(b)
    [(path, msg)] = problems(e)
    assert path == "extends" and "cyclic" in msg


def test_missing_extends_is_reported(write_yaml) -> None:
    p = write_yaml({"extends": "nowhere.yaml", "meta": {"name": "x"}})
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert problems(e) == [("extends", "file not found: nowhere.yaml")]


def test_overrides_parse_yaml_scalars_and_reach_nested_keys(devon_dict) -> None:
    out = apply_overrides(
        devon_dict,
        ["demand.growth=0.14", "policy.integer_builds=true", "demand.history.2026=11000"],
        "f",
    )
    assert out["demand"]["growth"] == 0.14
    assert out["policy"]["integer_builds"] is True
    assert out["demand"]["history"][2026] == 11000
    assert devon_dict["demand"]["growth"] == 0.10  # input untouched


def test_override_list_index(devon_dict) -> None:
    out = apply_overrides(devon_dict, ["capacity.pipeline.13.delay_years=2"], "f")
    assert out["capacity"]["pipeline"][13]["delay_years"] == 2
    with pytest.raises(ScenarioError) as e:
        apply_overrides(devon_dict, ["capacity.pipeline.99.delay_years=2"], "f")
    assert problems(e)[0][1] == "list index out of range"


def test_bad_override_syntax() -> None:
    with pytest.raises(ScenarioError) as e:
        apply_overrides({}, ["no-equals-sign"], "f")
    assert problems(e)[0][0] == "--set"


def test_sha256_changes_with_content_and_not_with_key_order(devon_dict, write_yaml) -> None:
    a = load_scenario(write_yaml(devon_dict, "a.yaml"))
    reordered = dict(reversed(list(devon_dict.items())))
    b = load_scenario(write_yaml(reordered, "b.yaml"))
    c = load_scenario(write_yaml(devon_dict, "c.yaml"), ["demand.growth=0.11"])
    assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256
    assert len(a.sha256) == 64


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ScenarioError) as e:
        parse_yaml_text("a: 1\nb: 2\na: 3\n", "dup.yaml")
    assert "duplicate key 'a'" in str(e.value) and "line 3" in str(e.value)


def test_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]\n"
    with pytest.raises(ScenarioError) as e:
        parse_yaml_text(bomb, "bomb.yaml")
    assert "bomb.yaml" in str(e.value)


def test_oversized_file_is_refused(write_yaml) -> None:
    p = write_yaml("x: " + "a" * (MAX_FILE_BYTES + 10) + "\n", "big.yaml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert "larger than 5 MB" in str(e.value)


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(ScenarioError):
        parse_yaml_text("x: !!python/object/apply:os.system ['echo hi']\n", "evil.yaml")


def test_uploaded_text_may_extend_only_the_embedded_default() -> None:
    r = load_scenario_text("extends: embedded:devon\nrun: {paths: 3}\n", "up.yaml")
    assert r.scenario.run.paths == 3
    with pytest.raises(ScenarioError) as e:
        load_scenario_text("extends: ../secret.yaml\n", "up.yaml")
    assert problems(e)[0][0] == "extends"


def test_atomic_folder_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out" / "scn"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "half.csv").write_text("a\n")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_atomic_folder_replaces_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "scn"
    for content in ("old", "new"):
        with atomic_folder(target) as tmp:
            (tmp / "f.txt").write_text(content)
    assert (target / "f.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scn"]


TWO_DISTRICTS = """
extends: embedded:devon
meta: {name: Two districts on Devon's rates}
geography:
  localities:
    - {id: north, name: North, lat: 51.0, lon: -4.0}
    - {id: south, name: South, lat: 50.5, lon: -3.7}
population:
  base_0_25: !replace {north: 100000, south: 120000}
capacity:
  existing: !replace {special: {north: 900, south: 1200}}
  pipeline: []
"""


def test_replace_tag_swaps_a_mapping_wholesale(write_yaml) -> None:
    r = load_scenario(write_yaml(TWO_DISTRICTS, "two.yaml"))
    assert r.scenario.locality_ids == ["north", "south"]
    assert r.scenario.population.base_0_25 == {"north": 100000, "south": 120000}
    assert r.scenario.capacity.existing == {"special": {"north": 900, "south": 1200}}
    assert "!replace" not in r.resolved_yaml  # the resolved file is plain YAML


def test_without_replace_the_base_districts_remain(write_yaml) -> None:
    p = write_yaml(TWO_DISTRICTS.replace("!replace ", ""), "two.yaml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    paths = [path for path, _ in problems(e)]
    assert "population.base_0_25.exeter" in paths  # Devon's districts merged in
    assert "capacity.existing.special.exeter" in paths


def test_delete_tag_removes_a_key_from_the_base(write_yaml, devon_dict) -> None:
    assert devon_dict["process"]  # Devon's statutory pipeline (its backlog clearance)
    text = "extends: embedded:devon\nprocess: !delete\ncosts:\n  band_multiplier: !delete\n"
    r = load_scenario(write_yaml(text, "noprocess.yaml"))
    assert r.scenario.process is None
    assert "process" not in r.resolved
    assert r.scenario.costs.band_multiplier == {}  # back to the schema default
    assert r.scenario.demand.growth == devon_dict["demand"]["growth"]  # the rest still merges


def test_delete_takes_no_value(write_yaml) -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario(write_yaml("extends: embedded:devon\ndemand: {backlog: !delete [1]}\n"))
    assert "!delete takes no value" in problems(e)[0][1]


def test_set_can_delete_a_key(devon_dict, write_yaml) -> None:
    r = load_scenario(write_yaml(devon_dict), ["demand.backlog=!delete"])
    assert r.scenario.demand.backlog == []


def test_history_never_merges_across_files(write_yaml) -> None:
    p = write_yaml("extends: embedded:devon\ndemand: {history: {2026: 11000}}\n", "merge.yaml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    [problem] = e.value.problems
    assert problem.file.endswith("merge.yaml") and problem.path == "demand.history"
    assert "history must come from one file" in problem.message
    assert str(problem).startswith(f"{problem.file}: demand.history: ")
    ok = write_yaml("extends: embedded:devon\ndemand: {history: !replace {2024: 9000}}\n")
    assert load_scenario(ok).scenario.demand.history == {2024: 9000}


def test_uploaded_text_gets_the_same_overlay_rules() -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario_text("extends: embedded:devon\ndemand: {history: {2026: 1}}\n", "up.yaml")
    assert problems(e)[0][0] == "demand.history"
    r = load_scenario_text("extends: embedded:devon\ndemand:\n  backlog: !delete\n", "up.yaml")
    assert r.scenario.demand.backlog == []
