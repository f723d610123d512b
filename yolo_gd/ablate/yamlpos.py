"""YAML with line numbers, for spec errors that name ``<file>:<line>: <key>:``.

:class:`~yolo_gd.yamlio.Loader` is PyYAML's SafeLoader that also reads ``1e-4`` as a float; :class:`Where` composes the
text once to map every key path (``('axes', 'optimizer', 1, 'lr')``) to its 1-based line, refuses duplicate keys
and invalid YAML, and builds the :class:`~yolo_gd.errors.UserError` s that point at a key.
"""

from __future__ import annotations

import yaml

from yolo_gd.errors import UserError
from yolo_gd.yamlio import Loader, load_yaml

__all__ = ["Loader", "Where", "dotted", "load_yaml"]


class Where:
    """Maps key paths (``('axes', 'optimizer', 1, 'lr')``) to 1-based file lines and formats errors."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines: dict[tuple, int] = {}
        try:
            root = yaml.compose(text, Loader=Loader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            line = mark.line + 1 if mark is not None else 1
            raise UserError(f"{file}:{line}: not valid YAML ({getattr(e, 'problem', None) or e}): fix its "
                            f"syntax") from None
        if root is not None:
            self._walk(root, ())

    def _walk(self, node, path: tuple) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                key = str(k.value) if isinstance(k, yaml.ScalarNode) else repr(k.value)
                line = k.start_mark.line + 1
                if key in seen:
                    raise UserError(f"{self.file}:{line}: {dotted(path + (key,))}: duplicate key (first given on "
                                    f"line {seen[key]}): keep one")
                seen[key] = line
                self.lines[path + (key,)] = line
                self._walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))

    def line(self, path: tuple) -> int:
        path = tuple(p if isinstance(p, int) else str(p) for p in path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, path: tuple, message: str) -> UserError:
        where = f"{dotted(path)}: " if path else ""
        return UserError(f"{self.file}:{self.line(path)}: {where}{message}")


def dotted(path: tuple) -> str:
    """``('axes', 'optimizer', 1, 'lr')`` -> ``axes.optimizer[1].lr``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out
