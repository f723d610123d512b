"""Names -> records: the one lookup both the optimizer and the schedule registry use.

A :class:`NamedRegistry` maps canonical names to records (an :class:`~yolo_gd.optim.optim_info.OptimInfo`, a
:class:`~yolo_gd.optim.schedule_registry.SchedInfo`) and accepts aliases. Names are normalised the same way
everywhere (:func:`normalize_name`: case-insensitive, ``-`` equals ``_``), an unknown name is a
:class:`~yolo_gd.errors.UserError` that lists the valid names and suggests the closest, and
:func:`import_path` resolves the ``'package.module:Name'`` form both registries accept for things that are not
registered.

As a read-only mapping a registry holds its canonical names only (``sorted(registry)``, ``registry['sgd']``);
:meth:`NamedRegistry.lookup` is the forgiving lookup for user input. Pure module ("floor 1").
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from yolo_gd.errors import UserError, unknown_name

__all__ = ["NamedRegistry", "import_path", "normalize_name"]

T = TypeVar("T")


def normalize_name(name: Any) -> str:
    """Names are case-insensitive and ``-`` equals ``_`` (``SGD``, ``AdamW``, ``sgd-plain``, ``One-Cycle``)."""
    return str(name).strip().lower().replace("-", "_")


def import_path(path: str, kind: str, what: str = "Class") -> Any:
    """Resolve ``'package.module:Attr'`` (``Attr`` may be dotted); every failure is a :class:`UserError`.

    ``kind`` names what is being resolved in the messages ("optimizer", "schedule"); ``what`` is the example
    attribute in the expected form (``'package.module:Class'``).
    """
    module_name, sep, attr = str(path).partition(":")
    if not sep or not module_name.strip() or not attr.strip() or ":" in attr:
        raise UserError(
            f"{kind} '{path}' is not an import path: it must look like 'package.module:{what}' "
            "(one ':' between them)"
        )
    module_name, attr = module_name.strip(), attr.strip()
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(
            f"{kind} path '{path}': cannot import module '{module_name}' ({e}); "
            "check the spelling and that its package is installed"
        ) from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(
                f"{kind} path '{path}': module '{module_name}' has no attribute '{attr}'; "
                "check the name (it is case-sensitive)"
            )
        obj = getattr(obj, part)
    return obj


class NamedRegistry(Mapping[str, T], Generic[T]):
    """Canonical name -> record, plus aliases; ``kind`` ("optimizer", "schedule") names it in every message."""

    def __init__(self, kind: str):
        self.kind = kind
        self._records: dict[str, T] = {}
        self._aliases: dict[str, str] = {}  # alias -> canonical name

    # ------------------------------------------------------------------------------------------ mapping (canonical)

    def __getitem__(self, name: str) -> T:
        return self._records[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"NamedRegistry({self.kind!r}, {sorted(self._records)})"

    # ------------------------------------------------------------------------------------------------ registering

    def register(self, name: str, record: T, aliases: Iterable[str] = (), *, overwrite: bool = False) -> T:
        """Add ``record`` under ``name`` (already normalised) and ``aliases``; a clash with another entry is an error.

        With ``overwrite=True`` an entry of the same name is replaced, its old aliases dropped.
        """
        canonical = normalize_name(name)
        if canonical != name:
            raise UserError(f"{self.kind} name '{name}' must be lower case with '_' (use '{canonical}')")
        keys = [canonical, *(normalize_name(a) for a in aliases)]
        for key in keys:
            owner = self.canonical(key)
            if owner is not None and owner != canonical:
                raise UserError(f"{self.kind} name '{key}' is already taken by '{owner}': pick another name or alias")
        if canonical in self._records:
            if not overwrite:
                raise UserError(f"{self.kind} '{canonical}' is already registered: pass overwrite=True to replace it")
            for alias in [a for a, n in self._aliases.items() if n == canonical]:
                del self._aliases[alias]
        self._records[canonical] = record
        for alias in keys[1:]:
            if alias != canonical:
                self._aliases[alias] = canonical
        return record

    # --------------------------------------------------------------------------------------------------- looking up

    def canonical(self, name: Any) -> str | None:
        """The canonical name ``name`` (any spelling, or an alias) stands for; ``None`` if it is unknown."""
        key = normalize_name(name)
        key = self._aliases.get(key, key)
        return key if key in self._records else None

    def lookup(self, name: Any) -> T:
        """The record for a name or alias in any spelling; an unknown name lists the valid ones and the closest."""
        key = self.canonical(name)
        if key is None:
            raise unknown_name(self.kind, name, self.names(include_aliases=True))
        return self._records[key]

    def aliases(self) -> dict[str, str]:
        """Alias -> canonical name (a copy)."""
        return dict(self._aliases)

    def names(self, *, include_aliases: bool = False) -> list[str]:
        """Canonical names, sorted; with ``include_aliases`` the aliases too."""
        names = list(self._records)
        if include_aliases:
            names += list(self._aliases)
        return sorted(names)
