"""Reading scenario files (safe YAML, `extends`, deep merge, `--set` overrides) and writing outputs atomically.

This is one of only two places that touch the file system (the other is ``model.reports``).
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import Problem, ScenarioError
from .scenario import Scenario, nested_model

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ALIASES = (
    100  # anchors/aliases are legitimate in small numbers; many are a billion-laughs attack
)
MAX_NODES = 200_000
MAX_PATH_BYTES = (
    1024  # a scenario path longer than this is a mistake (and beyond some file systems)
)
DEFAULT_NAME = "devon"
EMBEDDED = "embedded:"  # prefix of a scenario shipped in the package (extends, or a run argument)
_EMBEDDED_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SCENARIO_FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}\.ya?ml$")


@dataclass
class ResolvedScenario:
    """A validated scenario with where it came from: the resolved mapping is what runs and is hashed."""

    scenario: Scenario
    slug: str
    source: str
    resolved: dict[str, Any]
    overrides: list[str] = field(default_factory=list)

    # Written once: the resolved mapping is what ran, and no caller changes it afterwards.
    @functools.cached_property
    def resolved_yaml(self) -> str:
        return dump_yaml(self.resolved)

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.resolved_yaml.encode()).hexdigest()


# --------------------------------------------------------------------------- safe YAML


# libyaml's C parser where PyYAML was built with it (about ten times faster on a scenario),
# otherwise the pure-Python one; both build the same nodes for the guards below.
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SafeLoader(_BaseLoader):  # type: ignore[misc,valid-type]
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


def _path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a scenario file (too long, control characters), or None."""
    if len(path.encode("utf-8", errors="replace")) > MAX_PATH_BYTES:
        return f"path is longer than {MAX_PATH_BYTES} bytes"
    if not path.isprintable():
        return "path contains control characters"
    return None


def _read_regular_file(path: Path, file: str) -> str:
    """The text of a regular file, size-checked before reading; devices, pipes and folders are
    refused. Opened without blocking (a named pipe would otherwise wait for a writer for ever)."""
    bad = _path_problem(str(path))
    if bad:
        raise ScenarioError([Problem(file, "", bad)])
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ScenarioError([Problem(file, "", f"cannot read file: {e.strerror or e}")]) from None
    except ValueError:  # a NUL byte in the path
        raise ScenarioError([Problem(file, "", "path contains a NUL character")]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
            raise ScenarioError([Problem(file, "", f"not a regular file ({kind})")])
        if info.st_size > MAX_FILE_BYTES:
            raise ScenarioError(
                [Problem(file, "", f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")]
            )
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        raw = b"".join(chunks)
    except OSError as e:
        raise ScenarioError([Problem(file, "", f"cannot read file: {e.strerror or e}")]) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:  # grew while being read
        raise ScenarioError(
            [Problem(file, "", f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")]
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(
            [Problem(file, "", f"cannot read file as UTF-8 text (byte {e.start})")]
        ) from None


_POSITION = re.compile(r"\(line \d+, column \d+\)")


def read_yaml_file(path: Path, file: str | None = None, quote: bool = True) -> dict[str, Any]:
    """Read one scenario file as a mapping (no `extends` resolution); problems name it ``file``.

    ``quote=False`` (a file the user did not name: an `extends` parent) keeps its content out of
    messages: a YAML error says only where it is, never what it found there.
    """
    file = str(path) if file is None else file
    text = _read_regular_file(Path(path), file)
    try:
        data = parse_yaml_text(text, file)
    except ScenarioError as e:
        if quote:
            raise
        where = _POSITION.search(str(e))
        at = f" {where.group(0)}" if where else ""
        raise ScenarioError([Problem(file, "", f"not valid YAML{at}")]) from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ScenarioError([Problem(file, "", f"a scenario must be a YAML mapping, not {kind}")])
    return data


# libyaml's C emitter where PyYAML has it (its wheels do): four times faster on a scenario, and
# the app dumps one on every lever. The pure-Python one writes the same text for the embedded
# default; on odd strings (control characters, emoji) the two may quote differently, which
# changes only the sha256 caches key on, never what the text reads back as.
_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(data: Any) -> str:
    """Canonical YAML text (sorted keys) so that equal scenarios hash equally."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, default_flow_style=False
    )


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


@dataclass
class _Layer:
    """One file of an `extends` chain: how messages name it and its own (unmerged) mapping."""

    file: str
    data: dict[str, Any]


def _resolve_extends(
    path: Path,
    file: str,
    chain: tuple[Path, ...] = (),
    *,
    only_in: Path | None = None,
    layers: list[_Layer] | None = None,
) -> dict[str, Any]:
    """Read ``path`` and the files it extends, merged; ``file`` is how messages name ``path``.

    ``only_in``: a folder (the app's scenarios/) that every parent must be a plain file name in,
    unless it is an ``embedded:`` scenario. ``layers`` collects each file's own mapping, base first.
    """
    top = file if not chain else None
    real = Path(os.path.realpath(path)) if _path_problem(str(path)) is None else Path(path)
    if real in chain:
        names = " -> ".join(p.name for p in (*chain, real))
        raise ScenarioError([Problem(file, "extends", f"cyclic extends: {names}")])
    if len(chain) >= 20:
        raise ScenarioError([Problem(file, "extends", "more than 20 files in the extends chain")])
    data = read_yaml_file(path, file, quote=top is not None)
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or not parent.strip():
            raise ScenarioError([Problem(file, "extends", "must be a file path (string)")])
        parent_path, parent_file = _parent_of(parent, path, file, only_in)
        try:
            base = _resolve_extends(
                parent_path, parent_file, (*chain, real), only_in=only_in, layers=layers
            )
        except ScenarioError as e:
            problems = [_as_extends_problem(p, file, parent_file, parent) for p in e.problems]
            raise ScenarioError(problems) from None
        merged = deep_merge(base, data, file)
    else:
        merged = data
    if layers is not None:
        layers.append(_Layer(file, data))
    return merged


def _as_extends_problem(p: Problem, file: str, parent_file: str, written: str) -> Problem:
    """A problem reading a parent file, reported on the child's `extends` key."""
    if p.file != parent_file:
        return Problem(file, p.path, p.message) if p.path == "extends" else p
    if p.path == "extends" and p.message.startswith("cyclic extends"):
        return Problem(file, p.path, p.message)
    if p.message == "cannot read file: No such file or directory":
        return Problem(file, "extends", f"file not found: {written}")
    where = f"{p.path}: " if p.path else ""
    return Problem(file, "extends", f"{parent_file}: {where}{p.message}")


def _parent_of(parent: str, child: Path, child_file: str, only_in: Path | None) -> tuple[Path, str]:
    """Where an `extends` value points and how messages name it (relative to how the child was
    named, never made absolute). Refused without saying whether an arbitrary path exists."""
    if parent.startswith(EMBEDDED):
        return _embedded_path(parent, child_file), parent
    if only_in is not None:
        name = parent.removeprefix("scenarios/")
        if not _SCENARIO_FILE_NAME.match(name) or ".." in name:
            raise ScenarioError(
                [
                    Problem(
                        child_file,
                        "extends",
                        "may name only an embedded scenario (embedded:devon) or a file in "
                        "scenarios/ (e.g. devon.yaml)",
                    )
                ]
            )
        return only_in / name, f"scenarios/{name}"
    bad = _path_problem(parent)
    if bad:
        raise ScenarioError([Problem(child_file, "extends", bad)])
    shown = os.path.normpath(os.path.join(os.path.dirname(child_file), parent))
    return Path(child).parent / parent, shown


def _embedded_path(ref: str, file: str = "extends", key: str = "extends") -> Path:
    """The file of an ``embedded:NAME`` scenario shipped in the package (a bare name only);
    ``file`` and ``key`` name where the reference was written, for the error."""
    name = ref.split(":", 1)[1] or DEFAULT_NAME
    folder = Path(__file__).parent / "data"
    if not _EMBEDDED_NAME.match(name) or not (folder / f"{name}.yaml").is_file():
        known = ", ".join(f"{EMBEDDED}{p.stem}" for p in sorted(folder.glob("*.yaml")))
        shown = name if _EMBEDDED_NAME.match(name) else "(not a plain name)"
        raise ScenarioError([Problem(file, key, f"no embedded scenario {shown}; known: {known}")])
    return folder / f"{name}.yaml"


def default_scenario_path() -> Path:
    """The embedded Devon example shipped inside the package."""
    return _embedded_path(f"{EMBEDDED}{DEFAULT_NAME}")


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


def format_validation_error(
    err: ValidationError, file: str, origin: _Origin | None = None
) -> list[Problem]:
    """Turn pydantic's errors into ``FILE: key.path: message`` problems a person can act on.

    ``origin`` says which file each key came from: a value set in a file the user did not name
    (an `extends` parent) is never quoted, so a message cannot leak another file's content.
    """
    problems: list[Problem] = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if e["type"] == "value_error" and not loc:
            # Cross-reference problems arrive as "path: message" lines from Scenario._check_references.
            text = str(e.get("ctx", {}).get("error", e["msg"]))
            for line in text.splitlines():
                path, _, msg = line.partition(": ")
                problems.append(_guarded(file, path, msg, origin))
            continue
        if loc and loc[-1] == "[key]":  # a mapping key that is not valid (a year that is not one)
            loc = loc[:-1]
        path = _loc_path(loc)
        if e["type"] == "extra_forbidden":
            owner = _model_at(loc[:-1])
            hint = ""
            if owner is not None:
                hint = _did_you_mean(str(loc[-1]), list(owner.model_fields))
            problems.append(_guarded(file, path, f"unknown key{hint}", origin))
        elif e["type"] == "missing":
            problems.append(Problem(file, path, "required key is missing"))
        else:
            got = e.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            if len(shown) > 60:
                shown = shown[:57] + "..."
            problems.append(_guarded(file, path, f"{e['msg']} (got {shown})", origin))
    return problems


@dataclass
class _Origin:
    """Which file set each key: the user's own file and ``--set`` are quoted, parents are not."""

    user_file: str
    layers: list[_Layer]
    overrides: dict[str, Any] = field(default_factory=dict)

    def file_of(self, path: str) -> str:
        parts = [p for p in path.split(".") if p]
        if _has_path(self.overrides, parts):
            return self.user_file
        for layer in reversed(self.layers):
            if _has_path(layer.data, parts):
                return layer.file
        return self.user_file


def _has_path(data: Any, parts: list[str]) -> bool:
    node = data
    for part in parts:
        if isinstance(node, dict):
            match = [k for k in node if str(k) == part]
            if not match:
                return False
            node = node[match[0]]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _guarded(file: str, path: str, message: str, origin: _Origin | None) -> Problem:
    """A problem about the value at ``path``; from a parent file it names the parent, not the value."""
    if origin is None:
        return Problem(file, path, message)
    source = origin.file_of(path)
    if source == origin.user_file or source.startswith(EMBEDDED):  # the package's own files
        return Problem(file, path, message)
    return Problem(
        file,
        "extends",
        f"a value set in {source} is not valid here (not shown: {source} is not the file "
        f"given; validate {source} itself, or set the key in {file})",
    )


def _did_you_mean(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def validate_mapping(data: dict[str, Any], file: str, origin: _Origin | None = None) -> Scenario:
    """Validate a resolved mapping into a Scenario or raise ScenarioError with every problem.

    This is the one validation path (``sendplan validate``, ``sendplan run`` and the app): the
    schema's field bounds, keys that collide once coerced, the cross-field rules, and the checks
    the stages need (``model.checks``), so a scenario that validates never fails on its inputs.
    All problems come in one pass: a scenario with field errors is also checked for reference
    errors, on a copy where each bad value is replaced by a neutral one.
    """
    problems = [Problem(file, path, msg) for path, msg in colliding_keys(data)]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        problems += format_validation_error(err, file, origin)
        problems += _reference_problems_despite(err, data, file, origin)
        raise ScenarioError(_unique_problems(problems)) from None
    if problems:
        raise ScenarioError(problems)
    # imported here, not at the top: the demand stage's imports (numba, scipy) take a second or
    # two, which reading and writing files should not pay
    from .checks import demand_size_problems

    late = [_guarded(file, path, msg, origin) for path, msg in demand_size_problems(scenario)]
    if late:
        raise ScenarioError(_unique_problems(late))
    return scenario


def _unique_problems(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def colliding_keys(data: Any, path: str = "") -> list[tuple[str, str]]:
    """Mapping keys that become the same key once read (``2023`` and ``'2023'``, ``1`` and ``1.0``)."""
    out: list[tuple[str, str]] = []
    if isinstance(data, dict):
        seen: dict[str, Any] = {}
        for k in data:
            norm = str(int(k)) if isinstance(k, float) and k.is_integer() else str(k).strip()
            if norm in seen:
                where = f"{path}.{norm}" if path else norm
                out.append((where, f"given twice ({seen[norm]!r} and {k!r} are the same key)"))
            else:
                seen[norm] = k
        for k, v in data.items():
            out += colliding_keys(v, f"{path}.{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += colliding_keys(v, f"{path}.{i}")
    return out


_NUMBER_ERRORS = ("int_", "float_", "finite_number", "bool_")


def _reference_problems_despite(
    err: ValidationError, data: dict[str, Any], file: str, origin: _Origin | None
) -> list[Problem]:
    """The cross-reference problems of ``data``, found on a copy where every value the schema
    refused is replaced by a neutral one: the nearest bound for a number out of range, the
    embedded default's value for a value of the wrong type, or removed for an unknown key.
    Returns nothing when no neutral value exists (a missing section, a malformed id)."""
    patched = copy.deepcopy(data)
    for e in err.errors(include_url=False):
        loc = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        if e["type"] == "missing" or not loc:
            return []  # a section is missing: reference checks would only repeat it
        is_key = loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        ctx = e.get("ctx") or {}
        bound = next((ctx[b] for b in ("ge", "le", "gt", "lt") if b in ctx), None)
        node: Any = patched
        try:
            for k in loc[:-1]:
                node = node[_key_in(node, k)] if isinstance(node, dict) else node[k]
            last = loc[-1] if not isinstance(node, dict) else _key_in(node, loc[-1])
            if e["type"] == "extra_forbidden" or is_key:
                del node[last]
            elif bound is not None and isinstance(bound, int | float):
                node[last] = bound
            elif e["type"].startswith(_NUMBER_ERRORS):
                node[last] = _default_value_at(loc)
            else:
                return []
        except (KeyError, IndexError, TypeError, ValueError, LookupError):
            return []
    try:
        Scenario.model_validate(patched)
    except ValidationError as again:
        errors = again.errors(include_url=False)
        if any(e["type"] != "value_error" or e["loc"] for e in errors):
            return []
        bad_paths = {_loc_path(tuple(e["loc"])) for e in err.errors(include_url=False)}
        return [
            p
            for p in format_validation_error(again, file, origin)
            if not any(p.path == b or p.path.startswith(b + ".") for b in bad_paths)
        ]
    return []


@functools.lru_cache(maxsize=1)
def _default_mapping() -> dict[str, Any]:
    """The embedded default as read (cached; callers only read it)."""
    return read_yaml_file(default_scenario_path())


def _default_value_at(loc: list[Any]) -> Any:
    """The embedded default's value at ``loc`` (list positions past its end take its last item)."""
    node: Any = _default_mapping()
    for k in loc:
        if isinstance(node, list):
            node = node[min(int(k), len(node) - 1)]
        elif isinstance(node, dict):
            node = node[_key_in(node, k)]
        else:
            raise LookupError(k)
    if isinstance(node, dict | list):
        raise LookupError(loc)
    return node


def _key_in(node: dict[Any, Any], k: Any) -> Any:
    """The key of ``node`` that pydantic reported as ``k`` (it reports ``2023`` for ``'2023'``)."""
    if k in node:
        return k
    for key in node:
        if str(key) == str(k):
            return key
    raise KeyError(k)


def slug_for(path: Path | str) -> str:
    text = str(path) if path else ""
    stem = text.removeprefix(EMBEDDED) if text.startswith(EMBEDDED) else Path(text).stem
    stem = stem or DEFAULT_NAME
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return slug or "scenario"


def load_scenario(
    path: Path | str | None = None, overrides: list[str] | None = None
) -> ResolvedScenario:
    """Read, compose (extends), override and validate a scenario; ``None`` means the embedded default,
    and ``embedded:NAME`` (no file of that name existing) a scenario shipped in the package.

    Problems name the file exactly as given (``path`` as the user typed it, never made absolute).
    """
    overrides = list(overrides or [])
    if path is None:
        p = default_scenario_path()
    elif str(path).startswith(EMBEDDED) and not Path(path).exists():
        p = _embedded_path(str(path), str(path), "")
    else:
        p = Path(path)
    file = f"{EMBEDDED}{DEFAULT_NAME}" if path is None else str(path)
    layers: list[_Layer] = []
    data = _resolve_extends(p, file, layers=layers)
    data = resolve_markers(apply_overrides(data, overrides, file))
    origin = _Origin(file, layers, _override_layer(overrides))
    scenario = validate_mapping(data, file, origin)
    return ResolvedScenario(
        scenario=scenario, slug=slug_for(p), source=file, resolved=data, overrides=overrides
    )


def _override_layer(overrides: list[str]) -> dict[str, Any]:
    """The keys ``--set`` gives, as a mapping (only to tell which keys the user set)."""
    out: dict[str, Any] = {}
    for item in overrides:
        m = _SET_RE.match(item.strip())
        if m:
            node = out
            keys = m.group(1).split(".")
            for k in keys[:-1]:
                node = node.setdefault(k, {}) if isinstance(node.get(k, {}), dict) else {}
            node[keys[-1]] = True
    return out


def load_scenario_text(
    text: str,
    name: str = "uploaded.yaml",
    overrides: list[str] | None = None,
    scenario_dir: Path | None = None,
) -> ResolvedScenario:
    """Validate scenario YAML given as text (the app's upload).

    `extends` may name only an embedded scenario (``embedded:devon``) or, when ``scenario_dir`` is
    given, a file directly in that folder (the app's scenarios/): never an arbitrary path.
    """
    data = parse_yaml_text(text, name)
    if not isinstance(data, dict):
        raise ScenarioError([Problem(name, "", "a scenario must be a YAML mapping")])
    as_written = copy.deepcopy(data)  # the file's own layer, before extends is merged in
    layers: list[_Layer] = []
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or (
            scenario_dir is None and not parent.startswith(EMBEDDED)
        ):
            raise ScenarioError(
                [Problem(name, "extends", "an uploaded file may only extend 'embedded:devon'")]
            )
        only_in = scenario_dir if scenario_dir is not None else Path(os.devnull)
        parent_path, parent_file = _parent_of(parent, Path(name), name, only_in)
        base = _resolve_extends(
            parent_path, parent_file, (Path(name),), only_in=only_in, layers=layers
        )
        data = deep_merge(base, data, name)
    layers.append(_Layer(name, as_written))
    data = resolve_markers(apply_overrides(data, list(overrides or []), name))
    origin = _Origin(name, layers, _override_layer(list(overrides or [])))
    scenario = validate_mapping(data, name, origin)
    return ResolvedScenario(
        scenario=scenario,
        slug=slug_for(name),
        source=name,
        resolved=data,
        overrides=list(overrides or []),
    )


# --------------------------------------------------------------------------- outputs


_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)\.[^/]*\.(?:tmp|old)$"
)
_LEGACY_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")  # mkdtemp names without a pid
LEGACY_TEMP_AGE_SECONDS = 3600
_UMASK_LOCK = threading.Lock()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _temp_prefix(name: str) -> str:
    """Temporary names carry host and process id, so a later run can tell a dead run's leftovers."""
    return f".{name}.{_host()}-{os.getpid()}."


def current_umask() -> int:
    """The process umask (read without changing it where the platform allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temps(folder: Path | str) -> list[str]:
    """Remove temporary files and folders left in ``folder`` by runs that were killed (their
    process on this host is gone; older-style names without a process id once an hour old).
    Returns the names removed. Temporaries of runs still going are never touched."""
    import time

    folder = Path(folder)
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m:
            stale = m.group("host") == _host() and not _pid_alive(int(m.group("pid")))
        else:
            legacy = _LEGACY_TEMP.match(entry.name)
            try:
                age = time.time() - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            stale = legacy is not None and age > LEGACY_TEMP_AGE_SECONDS
        if not stale:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue
    return removed


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` in one rename.

    The folder is made exclusively (``mkdtemp``: never through an existing name or symlink) and
    gets the user's normal permissions (umask) before it takes ``target``'s place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    holder = None
    if os.path.lexists(target):
        holder = Path(
            tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".old", dir=target.parent)
        )
        os.replace(target, holder / "previous")
    os.replace(tmp, target)
    if holder is not None:
        shutil.rmtree(holder, ignore_errors=True)


def atomic_write(path: Path | str, write: Any) -> None:
    """Write ``path`` through a temporary sibling created exclusively (``mkstemp``: never through
    an existing name or a planted symlink), then rename it into place; ``write(tmp_path)`` fills it.
    The file gets the user's normal permissions (umask)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def non_finite_paths(data: Any, path: str = "") -> list[str]:
    """Key paths in a JSON-like value that hold NaN or infinity (strict JSON has neither)."""
    import math

    if isinstance(data, dict):
        return [
            q
            for k, v in data.items()
            for q in non_finite_paths(v, f"{path}.{k}" if path else str(k))
        ]
    if isinstance(data, list | tuple):
        return [q for i, v in enumerate(data) for q in non_finite_paths(v, f"{path}.{i}")]
    try:
        if (
            isinstance(data, bool)
            or not isinstance(data, int | float)
            and not hasattr(data, "dtype")
        ):
            return []
        return [] if math.isfinite(float(data)) else [path or "(value)"]
    except (TypeError, ValueError):
        return []


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (no NaN or infinity: a value that is not finite is an error, never written)."""
    path.write_text(
        json.dumps(data, indent=2, sort_keys=True, default=_json_default, allow_nan=False) + "\n",
        encoding="utf-8",
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
