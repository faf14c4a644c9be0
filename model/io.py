"""Reading scenario files (safe YAML, `extends`, deep merge, `--set` overrides) and writing outputs atomically.

This is one of only two places that touch the file system (the other is ``model.reports``).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .scenario import Scenario, nested_model

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ALIASES = (
    100  # anchors/aliases are legitimate in small numbers; many are a billion-laughs attack
)
MAX_NODES = 200_000
DEFAULT_NAME = "devon"


class ScenarioError(Exception):
    """Bad input: one or more ``FILE: key.path: message`` problems. The CLI exits 2 on it."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{_one_line(self.path)}: " if self.path else ""
        return f"{_one_line(self.file)}: {where}{_one_line(self.message)}"


def _one_line(text: str) -> str:
    """Escape control characters (a key may contain a newline) so every problem stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


@dataclass
class ResolvedScenario:
    """A validated scenario with where it came from: the resolved mapping is what runs and is hashed."""

    scenario: Scenario
    slug: str
    source: str
    resolved: dict[str, Any]
    overrides: list[str] = field(default_factory=list)

    @property
    def resolved_yaml(self) -> str:
        return dump_yaml(self.resolved)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.resolved_yaml.encode()).hexdigest()


# --------------------------------------------------------------------------- safe YAML


class _SafeLoader(yaml.SafeLoader):
    """Safe loader that rejects duplicate keys and alias bombs."""


def _construct_mapping(
    loader: _SafeLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping key is not a scalar", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_SafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class Replace(dict):
    """A mapping tagged ``!replace``: under ``extends`` it replaces the base's mapping wholesale."""


class _Delete:
    """The value of a key tagged ``!delete``: under ``extends`` the key is removed from the base."""

    def __repr__(self) -> str:
        return "!delete"


DELETE = _Delete()


def _construct_replace(loader: _SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return Replace(_construct_mapping(loader, node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)  # lists replace anyway
    return loader.construct_scalar(node)


def _construct_delete(loader: _SafeLoader, node: yaml.Node) -> _Delete:
    if not (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        raise yaml.constructor.ConstructorError(
            None, None, "!delete takes no value (write `key: !delete`)", node.start_mark
        )
    return DELETE


_SafeLoader.add_constructor("!replace", _construct_replace)
_SafeLoader.add_constructor("!delete", _construct_delete)


def _count_guard(root: yaml.Node | None) -> None:
    """Refuse documents whose alias expansion would be huge (billion laughs) before constructing them."""
    if root is None:
        return
    # Count expanded nodes with memoisation: an alias re-uses a node object, so expansion size
    # is the tree size where shared nodes are counted each time they are referenced.
    memo: dict[int, int] = {}
    aliases = 0

    def size(node: yaml.Node, depth: int = 0) -> int:
        nonlocal aliases
        key = id(node)
        if key in memo:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases")
            return memo[key]
        if depth > 200:
            raise yaml.YAMLError("nesting deeper than 200 levels")
        if isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(v, depth + 1) for v in node.value)
        else:
            n = 1
        memo[key] = n
        if n > MAX_NODES:
            raise yaml.YAMLError(f"document expands to more than {MAX_NODES} nodes (alias bomb?)")
        return n

    size(root)


def parse_yaml_text(text: str, file: str) -> Any:
    """Parse YAML text with the safe loader and the guards; raise ScenarioError naming ``file``."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise ScenarioError(
            [Problem(file, "", f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")]
        )
    try:
        loader = _SafeLoader(text)
        try:
            root = loader.get_single_node()
            _count_guard(root)
            return loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        msg = (e.problem or e.context or "invalid YAML").strip()
        raise ScenarioError([Problem(file, "", f"not valid YAML: {msg}{where}")]) from None
    except (yaml.YAMLError, RecursionError) as e:
        raise ScenarioError([Problem(file, "", f"not valid YAML: {e}")]) from None


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read one scenario file as a mapping (no `extends` resolution)."""
    file = str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ScenarioError([Problem(file, "", f"cannot read file: {e.strerror or e}")]) from None
    if size > MAX_FILE_BYTES:
        raise ScenarioError(
            [Problem(file, "", f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError([Problem(file, "", f"cannot read file as UTF-8 text: {e}")]) from None
    data = parse_yaml_text(text, file)
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ScenarioError([Problem(file, "", f"a scenario must be a YAML mapping, not {kind}")])
    return data


def dump_yaml(data: Any) -> str:
    """Canonical YAML text (sorted keys) so that equal scenarios hash equally."""
    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, default_flow_style=False)


# --------------------------------------------------------------------------- composition


# Keys that must come whole from one file: a merged history would mix two LAs' counts.
WHOLE_FROM_ONE_FILE = (("demand", "history"),)


def deep_merge(
    base: dict[str, Any], over: dict[str, Any], file: str = "", _at: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists, scalars) in ``over`` replaces ``base``.

    ``key: !replace {...}`` replaces the base's mapping wholesale and ``key: !delete`` removes the
    key; ``demand.history`` never merges (ScenarioError naming ``file``: use ``!replace``).
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        at = (*_at, str(k))
        if v is DELETE:
            out.pop(k, None)
        elif isinstance(v, Replace) or not (isinstance(v, dict) and isinstance(out.get(k), dict)):
            out[k] = resolve_markers(v)
        elif at in WHOLE_FROM_ONE_FILE and out[k]:
            raise ScenarioError(
                [
                    Problem(
                        file,
                        ".".join(at),
                        "would merge with the base file's history; history must come from one "
                        f"file: give the whole series as `{k}: !replace {{...}}` (or `!delete` it)",
                    )
                ]
            )
        else:
            out[k] = deep_merge(out[k], v, file, at)
    return out


def resolve_markers(data: Any) -> Any:
    """Plain data: ``!replace`` mappings become dicts, keys marked ``!delete`` are dropped."""
    if isinstance(data, dict):
        return {k: resolve_markers(v) for k, v in data.items() if v is not DELETE}
    if isinstance(data, list):
        return [resolve_markers(v) for v in data if v is not DELETE]
    return copy.deepcopy(data)


def _resolve_extends(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise ScenarioError([Problem(str(chain[0]), "extends", f"cyclic extends: {cycle}")])
    data = read_yaml_file(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError([Problem(str(path), "extends", "must be a file path (string)")])
    parent_path = (
        _embedded_path(parent) if parent.startswith("embedded:") else (path.parent / parent)
    )
    if not parent_path.exists():
        raise ScenarioError([Problem(str(path), "extends", f"file not found: {parent}")])
    return deep_merge(_resolve_extends(parent_path, (*chain, path)), data, str(path))


def _embedded_path(ref: str) -> Path:
    name = ref.split(":", 1)[1] or DEFAULT_NAME
    return Path(__file__).parent / "data" / f"{name}.yaml"


def default_scenario_path() -> Path:
    """The embedded Devon example shipped inside the package."""
    return _embedded_path(f"embedded:{DEFAULT_NAME}")


_SET_RE = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w-]+)*)=(.*)$", re.S)


def apply_overrides(data: dict[str, Any], overrides: list[str], file: str) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides; values are parsed as YAML scalars (or flow collections)."""
    out = copy.deepcopy(data)
    for item in overrides:
        m = _SET_RE.match(item.strip())
        if not m:
            raise ScenarioError([Problem(file, "--set", f"'{item}' is not key.path=value")])
        keys = m.group(1).split(".")
        value = (
            parse_yaml_text(m.group(2), f"{file} (--set {m.group(1)})")
            if m.group(2).strip()
            else None
        )
        node: Any = out
        for i, k in enumerate(keys[:-1]):
            key: Any = _coerce_key(node, k)
            if isinstance(node, list):
                if not isinstance(key, int) or not 0 <= key < len(node):
                    raise ScenarioError(
                        [Problem(file, ".".join(keys[: i + 1]), "list index out of range")]
                    )
                node = node[key]
                continue
            if key not in node or not isinstance(node[key], dict | list):
                node[key] = {}
            node = node[key]
        last: Any = _coerce_key(node, keys[-1])
        if isinstance(node, list):
            if not isinstance(last, int) or not 0 <= last < len(node):
                raise ScenarioError([Problem(file, m.group(1), "list index out of range")])
        elif not isinstance(node, dict):
            raise ScenarioError([Problem(file, m.group(1), "cannot set a key inside a scalar")])
        node[last] = value
    return out


def _coerce_key(node: Any, k: str) -> Any:
    """Integer-looking keys address list items and integer-keyed mappings (years, ages)."""
    if isinstance(node, list) or (
        isinstance(node, dict) and k.lstrip("-").isdigit() and int(k) in node
    ):
        return int(k) if k.lstrip("-").isdigit() else k
    if isinstance(node, dict) and k not in node and k.isdigit():
        # An integer-keyed table (history by year) gets integer keys, like YAML would give it.
        if node and all(isinstance(x, int) for x in node):
            return int(k)
    return k


# --------------------------------------------------------------------------- validation


def _loc_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the mapping at ``loc`` (for did-you-mean suggestions)."""
    model: Any = Scenario
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return None
        if isinstance(part, str) and part in fields:
            ann = fields[part].annotation
            model = nested_model(ann)
            if model is None:
                return None
        elif isinstance(part, int):
            continue
        else:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def format_validation_error(err: ValidationError, file: str) -> list[Problem]:
    """Turn pydantic's errors into ``FILE: key.path: message`` problems a person can act on."""
    problems: list[Problem] = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if e["type"] == "value_error" and not loc:
            # Cross-reference problems arrive as "path: message" lines from Scenario._check_references.
            text = str(e.get("ctx", {}).get("error", e["msg"]))
            for line in text.splitlines():
                path, _, msg = line.partition(": ")
                problems.append(Problem(file, path, msg))
            continue
        path = _loc_path(loc)
        if e["type"] == "extra_forbidden":
            owner = _model_at(loc[:-1])
            hint = ""
            if owner is not None:
                hint = _did_you_mean(str(loc[-1]), list(owner.model_fields))
            problems.append(Problem(file, path, f"unknown key{hint}"))
        elif e["type"] == "missing":
            problems.append(Problem(file, path, "required key is missing"))
        else:
            got = e.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            if len(shown) > 60:
                shown = shown[:57] + "..."
            problems.append(Problem(file, path, f"{e['msg']} (got {shown})"))
    return problems


def _did_you_mean(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def validate_mapping(data: dict[str, Any], file: str) -> Scenario:
    """Validate a resolved mapping into a Scenario or raise ScenarioError with every problem."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(format_validation_error(err, file)) from None


def slug_for(path: Path | str) -> str:
    stem = Path(path).stem if path else DEFAULT_NAME
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return slug or "scenario"


def load_scenario(
    path: Path | str | None = None, overrides: list[str] | None = None
) -> ResolvedScenario:
    """Read, compose (extends), override and validate a scenario; ``None`` means the embedded default."""
    overrides = list(overrides or [])
    p = default_scenario_path() if path is None else Path(path)
    file = f"embedded:{DEFAULT_NAME}" if path is None else str(path)
    data = _resolve_extends(p)
    data = resolve_markers(apply_overrides(data, overrides, file))
    scenario = validate_mapping(data, file)
    return ResolvedScenario(
        scenario=scenario, slug=slug_for(p), source=file, resolved=data, overrides=overrides
    )


def load_scenario_text(
    text: str, name: str = "uploaded.yaml", overrides: list[str] | None = None
) -> ResolvedScenario:
    """Validate scenario YAML given as text (the app's upload); `extends` may name only the embedded default."""
    data = parse_yaml_text(text, name)
    if not isinstance(data, dict):
        raise ScenarioError([Problem(name, "", "a scenario must be a YAML mapping")])
    parent = data.pop("extends", None)
    if parent is not None:
        if not (isinstance(parent, str) and parent.startswith("embedded:")):
            raise ScenarioError(
                [Problem(name, "extends", "an uploaded file may only extend 'embedded:devon'")]
            )
        data = deep_merge(_resolve_extends(_embedded_path(parent)), data, name)
    data = resolve_markers(apply_overrides(data, list(overrides or []), name))
    scenario = validate_mapping(data, name)
    return ResolvedScenario(
        scenario=scenario,
        slug=slug_for(name),
        source=name,
        resolved=data,
        overrides=list(overrides or []),
    )


# --------------------------------------------------------------------------- outputs


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    path.write_text(
        json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n", encoding="utf-8"
    )


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
