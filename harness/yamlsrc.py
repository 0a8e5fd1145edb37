"""YAML loading that remembers line numbers, so every matrix error names file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .verdict import InputError


class LineDict(dict):
    """A mapping from the YAML file; ``line`` is where it starts, ``key_lines`` where each key is."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases: `*name` (and `<<: *name`) can expand a few hundred bytes
    into gigabytes (an alias bomb); a matrix has no need for them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a matrix: write the values out",
                event.start_mark)
        return super().compose_node(parent, index)


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or a mapping",
                key_node.start_mark)
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


class ScalarInt(int):
    """An int from the file that remembers how it was written (0x1000000 stays hex)."""

    text: str


def _int(loader: _Loader, node: yaml.ScalarNode) -> ScalarInt:
    value = ScalarInt(loader.construct_yaml_int(node))
    value.text = node.value
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


MAX_BYTES = 4 << 20  # a matrix of thousands of combinations is a few hundred KiB


def load(path: Path) -> Any:
    try:
        if path.is_dir():
            raise InputError(f"{path} is a directory: pass the matrix file (e.g. "
                             f"{path / 'matrix.yaml'})")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such matrix file: pass an existing matrix.yaml") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the matrix ({exc.strerror}): pass a readable "
                         "matrix file") from exc
    if len(data) > MAX_BYTES:
        raise InputError(f"{path}: {len(data) >> 20} MiB is too big for a matrix "
                         f"(at most {MAX_BYTES >> 20} MiB): use axes instead of listing")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 (byte {exc.start}): save the matrix as "
                         "UTF-8") from exc
    return loads(text, str(path))


def loads(text: str, name: str = "<matrix>") -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
        raise InputError(f"{where}: YAML error: {problem}: fix the syntax at that line") from exc
    except RecursionError as exc:
        raise InputError(f"{name}: YAML nested too deep: a matrix needs a few levels") from exc


def line_of(node: Any, key: Any = None) -> int:
    if key is not None and isinstance(node, LineDict):
        return node.key_lines.get(key, node.line)
    return getattr(node, "line", 0)
