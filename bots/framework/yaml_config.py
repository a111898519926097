"""Load YAML into a validated model; every error names file, key path and line.

Used for the bot config here and for the community config in provisioning,
so both report mistakes the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bots.base.errors import ConfigError, ConfigProblems

M = TypeVar("M", bound=BaseModel)


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Map every key path in a composed YAML tree to its 1-based line."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), out)
            # The key's own line is more useful than the value's for mappings.
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)


def format_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _expected(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling against the example config)"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    got = err.get("input")
    if kind != "missing" and isinstance(got, str | int | float | bool) and len(str(got)) < 60:
        return f"{msg} (got {got!r})"
    return msg


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges are fine; explicit keys may override them
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a key must be a plain name, not a list or a mapping",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse *path*, returning the data and a key-path -> line index."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(name, "", "file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            name, "", f"cannot be read as UTF-8 text ({exc.__class__.__name__})"
        ) from None
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(name, "", f"is not valid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, "", f"is not valid YAML: {exc}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    return data, lines


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated model plus where each of its keys was written."""

    model: M
    path: Path
    lines: dict[tuple[Any, ...], int]

    def error_at(self, loc: tuple[Any, ...], expected: str) -> ConfigError:
        """A ConfigError for a check the schema cannot express (e.g. uniqueness)."""
        return ConfigError(str(self.path), format_path(loc), expected, _line_for(loc, self.lines))


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def load_model(path: Path, model: type[M], *, base_dir: Path | None = None) -> M:
    """Read *path* as YAML and validate it against *model*.

    Raises:
        ConfigError: naming the file, the key path, the line where known and
            what was expected.
    """
    return load_model_with_lines(path, model, base_dir=base_dir).model


def load_model_with_lines(path: Path, model: type[M], *, base_dir: Path | None = None) -> Loaded[M]:
    data, lines = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "expected a mapping of keys at the top level", 1)
    context = {"base_dir": base_dir or path.parent}
    try:
        return Loaded(model.model_validate(data, context=context), path, lines)
    except ValidationError as exc:
        raise validation_problems(path, exc, lines) from None


def validation_problems(
    path: Path,
    exc: ValidationError,
    lines: dict[tuple[Any, ...], int],
    prefix: tuple[Any, ...] = (),
) -> ConfigError:
    """Every problem pydantic found, each naming its key path and line."""
    problems = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        problems.append(
            ConfigError(str(path), format_path(loc), _expected(dict(err)), _line_for(loc, lines))
        )
    return problems[0] if len(problems) == 1 else ConfigProblems(problems)
