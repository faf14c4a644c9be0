"""Scenario loading: safe YAML, extends chains, deep merge, --set overrides and hashing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from model.io import (
    MAX_FILE_BYTES,
    ScenarioError,
    apply_overrides,
    atomic_folder,
    deep_merge,
    dump_yaml,
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


def test_embedded_name_loads_the_shipped_scenario_as_a_run_argument(
    tmp_path: Path, monkeypatch
) -> None:
    # `sendplan run embedded:devon`: the name the outputs give the default also runs it
    r = load_scenario("embedded:devon", ["run.paths=9"])
    default = load_scenario(None, ["run.paths=9"])
    assert r.resolved == default.resolved
    assert (r.slug, r.source) == ("devon", "embedded:devon")
    assert load_scenario("embedded:template").slug == "template"
    with pytest.raises(ScenarioError) as e:
        load_scenario("embedded:nope")
    assert [str(p) for p in e.value.problems] == [
        "embedded:nope: no embedded scenario nope; known: embedded:devon, embedded:template"
    ]
    # a file of that name, where one exists, is read as a file
    monkeypatch.chdir(tmp_path)
    Path("embedded:nope").write_text("extends: embedded:devon\nrun: {paths: 3}\n")
    assert load_scenario("embedded:nope").scenario.run.paths == 3


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
    assert "growth" not in devon_dict["demand"]  # input untouched (Devon's growth is learned)


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
    # the rest still merges
    assert r.scenario.demand.requests_per_1000 == devon_dict["demand"]["requests_per_1000"]


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


# --------------------------------------------------------------------------- safe file access


def _one_problem(path: Path | str) -> str:
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    lines = str(e.value).splitlines()
    assert all("\n" not in line for line in lines)
    return lines[0]


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom"])
def test_extends_a_device_is_refused_at_once(tmp_path: Path, target: str) -> None:
    if not Path(target).exists():
        pytest.skip(f"{target} does not exist here")
    f = tmp_path / "dev.yaml"
    f.write_text(f"extends: {target}\n")
    assert (
        _one_problem(f) == f"{f}: extends: {target}: not a regular file (a device, pipe or socket)"
    )


def test_extends_a_named_pipe_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # nobody ever writes to it: reading it would wait for ever
    (tmp_path / "f.yaml").write_text("extends: pipe\n")
    line = _one_problem(tmp_path / "f.yaml")
    assert line == (
        f"{tmp_path / 'f.yaml'}: extends: {tmp_path / 'pipe'}: not a regular file "
        "(a device, pipe or socket)"
    )


def test_extends_a_folder_or_an_over_long_path(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("extends: /tmp\n")
    assert _one_problem(tmp_path / "d.yaml").endswith(
        "extends: /tmp: not a regular file (a folder)"
    )
    (tmp_path / "l.yaml").write_text("extends: " + "b/" * 3000 + "x.yaml\n")
    assert _one_problem(tmp_path / "l.yaml").endswith("extends: path is longer than 1024 bytes")
    long_name = "a" * 5000 + ".yaml"
    line = _one_problem(long_name)
    assert line.endswith(": path is longer than 1024 bytes") and len(line) < 400


def test_problems_name_the_file_as_given_never_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("sub").mkdir()
    Path("sub/leaf.yaml").write_text("extends: base.yaml\nmeta: {horizon_years: 99}\n")
    Path("sub/base.yaml").write_text("extends: embedded:devon\n")
    assert _one_problem("sub/leaf.yaml").startswith("sub/leaf.yaml: meta.horizon_years: ")
    Path("sub/base.yaml").write_text("extends: nowhere.yaml\n")
    assert _one_problem("sub/leaf.yaml") == (
        "sub/leaf.yaml: extends: sub/base.yaml: extends: file not found: nowhere.yaml"
    )


def test_a_secret_file_in_extends_is_never_quoted(tmp_path: Path) -> None:
    secret = tmp_path / "secrets.txt"
    for text in (
        "meta:\n  base_year: hunter2-password\n",
        "hunter2-password: 1\n",
        "hunter2-password\n",
        "key: [hunter2-password\n",  # not valid YAML: the parser would quote it
        "meta: {name: x}\ncapacity: {pipeline: [{setting: hunter2-password}]}\n",
    ):
        secret.write_text(text)
        (tmp_path / "s.yaml").write_text("extends: secrets.txt\n")
        with pytest.raises(ScenarioError) as e:
            load_scenario(tmp_path / "s.yaml")
        assert "hunter2" not in str(e.value)
        assert all(p.file == str(tmp_path / "s.yaml") for p in e.value.problems)


def test_a_secret_file_in_extends_is_never_quoted_by_the_cli(tmp_path: Path, capsys) -> None:
    from model.cli import main

    (tmp_path / "secrets.txt").write_text("meta:\n  base_year: hunter2-password\n")
    (tmp_path / "s.yaml").write_text("extends: secrets.txt\n")
    for command in (["validate", str(tmp_path / "s.yaml")],
                    ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]):  # fmt: skip
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "hunter2" not in err
        assert f"{tmp_path / 's.yaml'}: extends: a value set in {tmp_path / 'secrets.txt'}" in err


@pytest.mark.parametrize(
    "parent",
    [
        "embedded:/etc/passwd",
        "embedded:../../../../etc/hostname",
        "embedded:../data/devon",
        "/etc/passwd",
        "../secret.yaml",
        "scenarios/../../secret.yaml",
        "sub/devon.yaml",
    ],
)
def test_an_upload_may_extend_only_embedded_or_scenarios(tmp_path: Path, parent: str) -> None:
    (tmp_path / "secret.yaml").write_text("meta: {base_year: hunter2-password}\n")
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(f"extends: '{parent}'\n", "up.yaml", scenario_dir=scenarios)
    text = str(e.value)
    assert "hunter2" not in text and "passwd" not in text and "hostname" not in text
    assert [p.path for p in e.value.problems] == ["extends"]


def test_an_upload_says_the_same_whether_a_path_exists_or_not(tmp_path: Path) -> None:
    (tmp_path / "there.yaml").write_text("meta: {name: x}\n")
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    messages = set()
    for parent in (str(tmp_path / "there.yaml"), str(tmp_path / "absent.yaml")):
        with pytest.raises(ScenarioError) as e:
            load_scenario_text(f"extends: '{parent}'\n", "up.yaml", scenario_dir=scenarios)
        messages.add(str(e.value))
    assert len(messages) == 1


def test_an_upload_may_extend_a_file_in_scenarios(tmp_path: Path, devon_dict, write_yaml) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    write_yaml(devon_dict, "scenarios/base.yaml")
    for parent in ("base.yaml", "scenarios/base.yaml"):
        r = load_scenario_text(
            f"extends: {parent}\nrun: {{paths: 3}}\n", "up.yaml", scenario_dir=scenarios
        )
        assert r.scenario.run.paths == 3
        assert r.scenario.meta.name == devon_dict["meta"]["name"]


def test_keys_that_collide_once_read_are_an_error(devon_dict) -> None:
    from model.io import validate_mapping

    devon_dict["demand"]["history"]["2023"] = 1.0  # beside the integer key 2023
    with pytest.raises(ScenarioError) as e:
        validate_mapping(devon_dict, "x.yaml")
    assert ("demand.history.2023", "given twice (2023 and '2023' are the same key)") in [
        (p.path, p.message) for p in e.value.problems
    ]


def test_schema_and_reference_problems_come_in_one_pass(write_yaml) -> None:
    f = write_yaml(
        {
            "extends": "embedded:devon",
            "meta": {"base_year": "soon"},
            "costs": {"unit_cost_gbp": {"special": float("nan")}},
            "capacity": {
                "pipeline": [
                    {
                        "name": "p",
                        "setting": "nowhere",
                        "locality": "atlantis",
                        "places": -5,
                        "open_year": 2027,
                    }  # fmt: skip
                ]
            },
        }
    )
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert [p.path for p in e.value.problems] == [
        "meta.base_year",
        "capacity.pipeline.0.places",
        "costs.unit_cost_gbp.special",
        "capacity.pipeline.0.setting",
        "capacity.pipeline.0.locality",
    ]


# --------------------------------------------------------------------------- writing outputs


def test_atomic_write_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    from model.io import atomic_write

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    # every name the old writer would have used, and the new prefix with this process id
    for name in (f".comparison.csv.{os.getpid()}.tmp", f".comparison.csv.{os.getpid() + 1}.tmp"):
        (out / name).symlink_to(victim)
    atomic_write(out / "comparison.csv", lambda p: p.write_text("a,b\n1,2\n"))
    assert victim.read_text() == "precious\n"
    assert (out / "comparison.csv").read_text() == "a,b\n1,2\n"


def test_output_folders_and_files_get_the_users_umask(tmp_path: Path) -> None:
    from model.io import atomic_write

    old = os.umask(0o027)
    try:
        with atomic_folder(tmp_path / "scn") as tmp:
            (tmp / "f.csv").write_text("x\n")
        atomic_write(tmp_path / "c.csv", lambda p: p.write_text("x\n"))
    finally:
        os.umask(old)
    assert (tmp_path / "scn").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "scn" / "f.csv").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "c.csv").stat().st_mode & 0o777 == 0o640


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path: Path) -> None:
    from model.io import _host, remove_stale_temps

    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".devon.{_host()}-{dead}.k2j3h4.tmp"
    stale.mkdir()
    (stale / "costs.csv").write_text("half\n")
    stale_file = tmp_path / f".comparison.csv.{_host()}-{dead}.x1y2.tmp"
    stale_file.write_text("half\n")
    running = tmp_path / f".devon.{_host()}-{alive}.a1b2c3.tmp"
    running.mkdir()
    other_host = tmp_path / f".devon.otherhost-{dead}.a1b2c3.tmp"
    other_host.mkdir()
    legacy = tmp_path / ".high-growth.ab12cd34.tmp"  # from before temporaries named their process
    legacy.mkdir()
    os.utime(legacy, (0, 0))
    fresh_legacy = tmp_path / ".early-help.zz12cd34.tmp"
    fresh_legacy.mkdir()
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([stale.name, stale_file.name, legacy.name])
    assert running.exists() and other_host.exists() and fresh_legacy.exists()


_SCALARS = (
    st.text(max_size=120)
    | st.floats(allow_nan=False)
    | st.integers(-(10**12), 10**12)
    | st.booleans()
    | st.none()
)
_MAPPINGS = st.recursive(
    st.dictionaries(st.text(max_size=20), _SCALARS, max_size=4),
    lambda inner: st.dictionaries(
        st.text(max_size=20), inner | st.lists(inner | _SCALARS, max_size=3), max_size=4
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_MAPPINGS)
def test_scenario_text_reads_back_as_the_scenario(data) -> None:
    """dump_yaml (libyaml's emitter where PyYAML has it) writes text that reads back as the
    mapping, whatever its strings hold: the resolved.yaml a run writes is the scenario it ran."""
    text = dump_yaml(data)
    assert yaml.safe_load(text) == data
    assert dump_yaml(yaml.safe_load(text)) == text  # canonical: the same text again


def test_the_default_dumps_the_same_from_either_yaml_emitter() -> None:
    """The embedded default's text (and so its sha256) is the same with the pure-Python emitter."""
    resolved = load_scenario(None).resolved
    python = yaml.dump(
        resolved,
        Dumper=yaml.SafeDumper,
        sort_keys=True,
        allow_unicode=True,
        default_flow_style=False,
    )
    assert dump_yaml(resolved) == python
