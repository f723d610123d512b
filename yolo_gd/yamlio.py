"""YAML as users write it: PyYAML's SafeLoader that also reads ``1e-4`` (no dot) as a float, as YAML 1.2 and Python
do (plain PyYAML reads it as a string, which a number check would then refuse)."""

from __future__ import annotations

import re

import yaml

__all__ = ["Loader", "load_yaml"]


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` (no dot) as a float."""


Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml(text: str) -> object:
    """The values of ``text`` (read with :class:`Loader`)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader subclass)
