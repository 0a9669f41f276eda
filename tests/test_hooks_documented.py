"""Every hook is documented in docs/hooks.md with exactly its arguments, and nothing else is."""

from __future__ import annotations

import re

from econash import hookspecs
from econash.plugins import make_plugin_manager

from conftest import REPO

HEADING = re.compile(r"^### (\w+)\(([^)]*)\)\s*$", re.MULTILINE)


def documented() -> dict[str, tuple[str, ...]]:
    text = (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")
    return {name: tuple(a.strip() for a in args.split(",") if a.strip()) for name, args in HEADING.findall(text)}


def specified() -> dict[str, tuple[str, ...]]:
    pm = make_plugin_manager(load_entry_points=False)
    specs = {}
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        if hasattr(caller, "spec") and caller.spec is not None:
            specs[name] = tuple(caller.spec.argnames)
    return specs


def test_every_hook_is_documented_with_its_arguments():
    docs, specs = documented(), specified()
    missing = sorted(set(specs) - set(docs))
    assert not missing, f"hooks missing from docs/hooks.md: {missing}"
    wrong = {name: (docs[name], args) for name, args in specs.items() if docs[name] != args}
    assert not wrong, f"documented with the wrong arguments (docs, spec): {wrong}"


def test_docs_name_no_hook_that_does_not_exist():
    extra = sorted(set(documented()) - set(specified()))
    assert not extra, f"docs/hooks.md documents hooks that do not exist: {extra}"


def test_hook_lists_match_the_specs():
    specs = specified()
    assert set(hookspecs.REGISTRATION_HOOKS) | set(hookspecs.LIFECYCLE_HOOKS) | {"register_commands"} == set(specs)


def test_every_hookspec_has_a_docstring_for_each_argument():
    for name, args in specified().items():
        doc = getattr(hookspecs, name).__doc__ or ""
        for arg in args:
            assert f":param {arg}:" in doc, f"{name} does not document :param {arg}:"
