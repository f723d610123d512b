"""The one name lookup behind the optimizer and the schedule registry: spellings, aliases, unknown names, paths.

Parametrized over the registries themselves, so a name or alias added to either is checked the moment it exists.
"""

from __future__ import annotations

import pytest

from yolo_gd.errors import UserError
from yolo_gd.optim.named_registry import NamedRegistry, import_path, normalize_name
from yolo_gd.optim.registry import _REGISTRY as OPTIMIZERS
from yolo_gd.optim.registry import resolve_optimizer
from yolo_gd.optim.schedule_registry import SCHEDULES, get_schedule

REGISTRIES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}
KEYS = [(kind, key) for kind, reg in REGISTRIES.items() for key in reg.names(include_aliases=True)]


def _spellings(key: str) -> list[str]:
    return [key, key.upper(), key.replace("_", "-"), f"  {key.title()}  "]


@pytest.mark.parametrize(("kind", "key"), KEYS)
def test_every_name_and_alias_resolves_in_any_spelling(kind, key):
    reg = REGISTRIES[kind]
    canonical = reg.canonical(key)
    assert canonical in reg  # an alias points at a registered name
    for spelling in _spellings(key):
        assert reg.canonical(spelling) == canonical, spelling
        assert reg.lookup(spelling) is reg[canonical]


@pytest.mark.parametrize("kind", REGISTRIES)
def test_names_are_normalised_and_aliases_never_shadow_names(kind):
    reg = REGISTRIES[kind]
    assert reg.kind == kind
    for name in reg:
        assert normalize_name(name) == name
    aliases = reg.aliases()
    assert not set(aliases) & set(reg)
    assert reg.names(include_aliases=True) == sorted([*reg, *aliases])


@pytest.mark.parametrize("kind", REGISTRIES)
def test_unknown_name_lists_every_name_and_suggests_the_closest(kind):
    reg = REGISTRIES[kind]
    with pytest.raises(UserError) as e:
        reg.lookup("zzqqxx")
    msg = str(e.value)
    assert msg.startswith(f"unknown {kind} 'zzqqxx'.") and "Did you mean" not in msg
    for key in reg.names(include_aliases=True):
        assert f"{key}," in msg or f"{key}." in msg
    name = max(reg, key=len)  # a long name: one changed letter stays its closest match
    typo = name[:-1] + ("x" if name[-1] != "x" else "y")
    with pytest.raises(UserError, match=rf"Did you mean '{name}'\?"):
        reg.lookup(typo)


# the public entry points of both registries reach the same errors
LOOKUPS = {"optimizer": resolve_optimizer, "schedule": get_schedule}


@pytest.mark.parametrize("kind", LOOKUPS)
def test_entry_points_use_the_shared_lookup(kind):
    with pytest.raises(UserError, match=f"unknown {kind} 'zzqqxx'"):
        LOOKUPS[kind]("zzqqxx")


@pytest.mark.parametrize("kind", LOOKUPS)
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_xyz:Thing", "path 'no_such_module_xyz:Thing': cannot import module 'no_such_module_xyz'"),
        ("yolo_gd.optim.schedules:Nope", "module 'yolo_gd.optim.schedules' has no attribute 'Nope'"),
        ("yolo_gd.optim.schedules:", "is not an import path"),
        ("yolo_gd.optim.schedules:a:b", "is not an import path"),
    ],
)
def test_import_path_errors_are_the_same_for_both(kind, path, message):
    with pytest.raises(UserError) as e:
        LOOKUPS[kind](path)
    assert message in str(e.value) and str(e.value).startswith(kind)


def test_import_path_resolves_dotted_attributes():
    assert import_path("yolo_gd.optim.named_registry:NamedRegistry.lookup", "thing") is NamedRegistry.lookup


def test_register_refuses_clashes_and_replaces_on_request():
    reg: NamedRegistry[str] = NamedRegistry("widget")
    reg.register("alpha", "a", ("first", "A-1"))
    assert reg.lookup("a_1") == "a" and reg.aliases() == {"first": "alpha", "a_1": "alpha"}
    with pytest.raises(UserError, match="widget 'alpha' is already registered"):
        reg.register("alpha", "b")
    with pytest.raises(UserError, match="widget name 'first' is already taken by 'alpha'"):
        reg.register("beta", "b", ("first",))
    with pytest.raises(UserError, match="widget name 'Beta' must be lower case with '_' \\(use 'beta'\\)"):
        reg.register("Beta", "b")
    assert "beta" not in reg and len(reg) == 1
    reg.register("alpha", "a2", ("second",), overwrite=True)  # the old aliases go with the old record
    assert reg["alpha"] == "a2" and reg.aliases() == {"second": "alpha"}
    with pytest.raises(KeyError):
        reg["first"]  # the mapping holds canonical names only
