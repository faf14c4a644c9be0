"""`sendplan validate`: every bad-input class exits 2 with `FILE: key.path: message`, never a traceback."""

from __future__ import annotations

import copy
import glob
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.cli import main


def run_validate(capsys: pytest.CaptureFixture[str], *files: str) -> tuple[int, list[str]]:
    code = main(["validate", *map(str, files)])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line]


def test_shipped_scenarios_are_valid(capsys) -> None:
    files = sorted(glob.glob("scenarios/*.yaml"))
    assert len(files) >= 3
    code, lines = run_validate(capsys, *files)
    assert code == 0, lines


def test_scenarios_devon_is_the_embedded_default() -> None:
    from model.io import default_scenario_path

    assert open("scenarios/devon.yaml").read() == default_scenario_path().read_text()


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    last = keys[-1]
    if isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


# (mutation path, value, expected key path in the message, expected words in the message)
CASES = [
    ("demand.grwoth", 0.1, "demand.grwoth", "unknown key (did you mean 'growth'?)"),
    ("meta.horizon_years", "ten", "meta.horizon_years", "valid integer"),
    ("meta.horizon_years", 0, "meta.horizon_years", "greater than or equal to 1"),
    ("meta.horizon_years", 31, "meta.horizon_years", "less than or equal to 30"),
    (
        "population.base_0_25.exeter",
        -5,
        "population.base_0_25.exeter",
        "greater than or equal to 0",
    ),
    ("capacity.existing.special.exeter", -1, "capacity.existing.special.exeter", "greater than or"),
    ("demand.history.2024", -3, "demand.history.2024", "given twice (2024 and '2024'"),
    ("population.base_0_25.exeter", float("nan"), "population.base_0_25.exeter", "finite number"),
    ("costs.unit_cost_gbp.special", float("inf"), "costs.unit_cost_gbp.special", "finite number"),
    ("policy.capital_budget_gbp", float("inf"), "policy.capital_budget_gbp", "finite number"),
    ("geography.road_factor", 1e308, "geography.road_factor", "less than or equal to 5"),
    ("costs.lead_time_years.special", 10**9, "costs.lead_time_years.special", "less than or"),
    (
        "demand.levers",
        [{"rate": "requests", "factor": 1e6, "from_year": 2026}],
        "demand.levers.0.factor",
        "less than or equal to 10",
    ),  # fmt: skip
    ("demand.growth_end_year", 2020, "demand.growth_end_year", "before meta.base_year"),
    ("finance.opening_deficit_gbp", 1e13, "finance.opening_deficit_gbp", "less than or equal"),
    ("demand.conversion_rate", 1.5, "demand.conversion_rate", "less than or equal to 1"),
    (
        "costs.transport.share_transported.special",
        1.2,
        "costs.transport.share_transported.special",
        "outside [0, 1]",
    ),
    (
        "capacity.pipeline.0.locality",
        "exter",
        "capacity.pipeline.0.locality",
        "unknown locality 'exter' (did you mean 'exeter'?)",
    ),
    (
        "capacity.pipeline.0.setting",
        "specal",
        "capacity.pipeline.0.setting",
        "unknown setting 'specal' (did you mean 'special'?)",
    ),
    (
        "bands.universal.settings",
        ["mainstream", "hospital"],
        "bands.universal.settings.hospital",
        "unknown setting",
    ),
    (
        "policy.buildable.resourcebase",
        {},
        "policy.buildable.resourcebase",
        "did you mean 'resource_base'",
    ),
    ("placements.mix.primary.default.mainstream", 0.9, "placements.mix.primary.default", "sum to"),
    ("meta", "not a mapping", "meta", "valid dictionary"),
    (
        "placements.mix.post16.default",
        {"resource_base": 0.5, "post16": 0.5},
        "placements.mix.post16.default.resource_base",
        "setting 'resource_base' does not serve phase 'post16'",
    ),
    (
        "bands.independent_only.settings",
        ["post16"],
        "placements.band_shares.primary.default.independent_only",
        "band 'independent_only' has no setting serving phase 'primary'",
    ),
    (
        "placements.movers.primary.mainstream.post16",
        0.01,
        "placements.movers.primary.mainstream.post16",
        "setting 'post16' does not serve phase 'primary'",
    ),
]


@pytest.mark.parametrize(("path", "value", "where", "words"), CASES)
def test_bad_input_exits_2_with_key_path(
    capsys, devon_dict, write_yaml, path, value, where, words
) -> None:
    _set(devon_dict, path, value)
    f = write_yaml(devon_dict, "bad.yaml")
    code, lines = run_validate(capsys, f)
    assert code == 2
    assert any(line.startswith(f"{f}: {where}: ") and words in line for line in lines), lines
    assert not any("Traceback" in line for line in lines)


def test_control_characters_in_keys_stay_on_one_line(capsys, devon_dict, write_yaml) -> None:
    # Found by the property test: a key "\r" must not split the problem line.
    devon_dict["meta"]["\r"] = 0
    f = write_yaml(devon_dict)
    code, lines = run_validate(capsys, f)
    assert code == 2 and lines == [f"{f}: meta.\\r: unknown key"]


def test_distance_table_must_be_square(capsys, devon_dict, write_yaml) -> None:
    ids = [loc["id"] for loc in devon_dict["geography"]["localities"]]
    table = {a: {b: 10.0 for b in ids} for a in ids}
    del table["exeter"]["torridge"]
    del table["mid_devon"]
    devon_dict["geography"]["distances_km"] = table
    f = write_yaml(devon_dict)
    code, lines = run_validate(capsys, f)
    assert code == 2
    assert (
        f"{f}: geography.distances_km.exeter: missing column(s) torridge: the table must be square"
        in lines
    )
    assert (
        f"{f}: geography.distances_km.mid_devon: missing row: the distance table must be square"
        in lines
    )


def test_missing_required_key(capsys, devon_dict, write_yaml) -> None:
    del devon_dict["finance"]["opening_deficit_gbp"]
    f = write_yaml(devon_dict)
    code, lines = run_validate(capsys, f)
    assert code == 2 and lines == [f"{f}: finance.opening_deficit_gbp: required key is missing"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: [1, 2\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a YAML mapping, not list"),
        ("", "must be a YAML mapping, not empty"),
        ("meta: 1\nmeta: 2\n", "duplicate key 'meta'"),
    ],
)
def test_not_yaml_or_not_a_mapping(capsys, write_yaml, text, words) -> None:
    f = write_yaml(text)
    code, lines = run_validate(capsys, f)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"{f}: ") and words in lines[0]


def test_missing_file_and_cyclic_extends(capsys, write_yaml, tmp_path) -> None:
    write_yaml({"extends": "b.yaml"}, "a.yaml")
    b = write_yaml({"extends": "a.yaml"}, "b.yaml")
    code, lines = run_validate(capsys, tmp_path / "absent.yaml", b)
    assert code == 2
    assert lines[0].startswith(f"{tmp_path / 'absent.yaml'}: cannot read file")
    assert lines[1].startswith(f"{b}: extends: cyclic extends")


def test_every_file_is_checked_and_reported(capsys, devon_dict, write_yaml) -> None:
    good = write_yaml(devon_dict, "good.yaml")
    devon_dict["run"]["paths"] = 0
    bad = write_yaml(devon_dict, "bad.yaml")
    code = main(["validate", str(good), str(bad)])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"{good}: ok" in out
    assert err.startswith(f"{bad}: run.paths: ")


def test_schema_command_prints_json_schema(capsys) -> None:
    import json

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    growth = schema["$defs"]["Demand"]["properties"]["growth"]
    assert growth["unit"] == "share per year" and growth["description"]
    assert schema["additionalProperties"] is False


# ---------------------------------------------------------------- property test

_PATHS: list[tuple[Any, ...]] = []


def _collect(node: Any, prefix: tuple[Any, ...] = ()) -> None:
    _PATHS.append(prefix)
    if isinstance(node, dict):
        for k, v in node.items():
            _collect(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _collect(v, (*prefix, i))


def _devon() -> dict[str, Any]:
    from model.io import default_scenario_path, read_yaml_file

    return read_yaml_file(default_scenario_path())


_BASE = _devon()
_collect(_BASE)
_PATHS = [p for p in _PATHS if p]

replacement = st.one_of(
    st.just("__drop__"),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutations=st.lists(st.tuples(st.sampled_from(_PATHS), replacement), min_size=1, max_size=4))
def test_mutated_scenarios_validate_or_exit_2_with_key_path(
    tmp_path_factory, capsys, mutations
) -> None:
    data = copy.deepcopy(_BASE)
    for path, value in mutations:
        node: Any = data
        try:
            for k in path[:-1]:
                node = node[k]
            if value == "__drop__":
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    import yaml

    f = tmp_path_factory.mktemp("prop") / "mutated.yaml"
    f.write_text(yaml.safe_dump(data))
    code = main(["validate", str(f)])
    out, err = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        lines = [line for line in err.splitlines() if line]
        assert lines
        for line in lines:
            assert line.startswith(f"{f}: ")
            assert "Traceback" not in line
        # at least one problem names a key path (file-level problems only for unparseable files)
        assert any(line.count(": ") >= 2 for line in lines), lines
    else:
        assert out.strip() == f"{f}: ok"


def test_pipeline_delays_by_name(capsys, devon_dict, write_yaml) -> None:
    from model.io import load_scenario

    r = load_scenario("scenarios/special_schools_delayed.yaml")
    cranbrook = next(
        p for p in r.scenario.capacity.pipeline if p.name == "Special school Cranbrook"
    )
    assert r.scenario.capacity.open_year(cranbrook) == cranbrook.open_year + 2
    devon_dict["capacity"]["delays"] = {"Special school Cranbrok": 1}
    f = write_yaml(devon_dict)
    code, lines = run_validate(capsys, f)
    assert code == 2
    assert lines == [
        f"{f}: capacity.delays.Special school Cranbrok: no pipeline project named "
        "'Special school Cranbrok' (did you mean 'Special school Cranbrook'?)"
    ]


def test_scenario_reference_doc_is_current(capsys) -> None:
    assert main(["schema", "--markdown"]) == 0
    assert capsys.readouterr().out == open("docs/scenario-reference.md").read(), (
        "run: sendplan schema --markdown > docs/scenario-reference.md"
    )
