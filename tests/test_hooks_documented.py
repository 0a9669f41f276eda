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


# --- the contract each registration hook describes: the members a plugin's class implements ---

#: the base class whose members each registration hook's section names
BASES = {"register_backends": "Backend", "register_tasks": "Task", "register_rewards": "Reward",
         "register_topologies": "Topology", "register_methods": "Method", "register_embedders": "Embedder"}
#: call forms in those sections that are not members: how the registry calls the plugin's class
NOT_MEMBERS = {"factory", "register"}
CODE_SPAN = re.compile(r"`([^`]+)`")
CALL_FORM = re.compile(r"^(?:async\s+)?([A-Za-z_]\w*)\(([^)]*)\)")
ATTRIBUTE_FORM = re.compile(r"^([A-Za-z_]\w*)\s*=")
QUALIFIED_FORM = re.compile(r"^(episode|run|RunContext)\.([A-Za-z_]\w*)")


def section(text: str, hook: str) -> str:
    """The text under ``### hook(...)`` up to the next heading."""
    start = re.search(rf"^### {hook}\(.*$", text, re.MULTILINE)
    assert start, f"docs/hooks.md has no section for {hook}"
    end = re.search(r"^#{2,3} ", text[start.end():], re.MULTILINE)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def contract_mismatches(text: str, hook: str) -> list[str]:
    """What a hook's section names that its base class (or the episode and run contexts) lacks:
    a member called with arguments it does not take, or one that does not exist."""
    import inspect

    import econash
    from econash.engine.context import EpisodeContext, RunContext

    base = getattr(econash, BASES[hook])
    owners = {"episode": EpisodeContext, "run": RunContext, "RunContext": RunContext}
    problems = []
    for span in CODE_SPAN.findall(section(text, hook)):
        span = span.strip()
        if qualified := QUALIFIED_FORM.match(span):
            owner, member = qualified.groups()
            fields = getattr(owners[owner], "__dataclass_fields__", {})
            if not hasattr(owners[owner], member) and member not in fields:
                problems.append(f"`{span}`: {owners[owner].__name__} has no '{member}'")
        elif call := CALL_FORM.match(span):
            name, args = call.groups()
            if name in NOT_MEMBERS:
                continue
            if not hasattr(base, name):
                problems.append(f"`{span}`: econash.{base.__name__} has no method '{name}'")
                continue
            documented_args = [a.strip() for a in args.split(",") if a.strip()]
            if documented_args and documented_args != ["..."]:
                actual = [p for p in inspect.signature(getattr(base, name)).parameters if p != "self"]
                if documented_args != actual:
                    problems.append(f"`{span}`: econash.{base.__name__}.{name} takes ({', '.join(actual)})")
        elif attribute := ATTRIBUTE_FORM.match(span):
            if not hasattr(base, attribute.group(1)):
                problems.append(f"`{span}`: econash.{base.__name__} has no attribute '{attribute.group(1)}'")
    return problems


def hooks_text() -> str:
    return (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")


def test_each_registration_hook_names_only_real_members_of_its_base_class():
    problems = {hook: contract_mismatches(hooks_text(), hook) for hook in BASES}
    assert not any(problems.values()), f"docs/hooks.md names what the code lacks: {problems}"


def test_the_check_catches_a_method_contract_the_code_does_not_have():
    """The sentence docs/hooks.md once had: a learning method implementing `train(problems, run)`."""
    old = hooks_text().replace("`train_episode(problem, episode)`", "`train(problems, run)`")
    assert any("no method 'train'" in p for p in contract_mismatches(old, "register_methods"))
    swapped = hooks_text().replace("`load(split, size,\nseed)`", "`load(size, split, seed)`")
    assert any("Task.load takes (split, size, seed)" in p for p in contract_mismatches(swapped, "register_tasks"))


def public_methods(cls: type) -> set[str]:
    import inspect

    return {name for name, value in inspect.getmembers(cls, callable)
            if not name.startswith("_") and name in vars(cls)}


def test_the_method_contract_names_every_method_of_econash_method():
    """Everything the core's loops call on a method is in docs/hooks.md, so a plugin author reading
    it knows the whole contract (train_episode, update, should_stop, set_policy, state_dict, ...)."""
    import econash

    spans = {CALL_FORM.match(s.strip()).group(1) for s in CODE_SPAN.findall(section(hooks_text(), "register_methods"))
             if CALL_FORM.match(s.strip())}
    missing = sorted(public_methods(econash.Method) - spans)
    assert not missing, f"docs/hooks.md (register_methods) does not name econash.Method's {missing}"


def test_every_abstract_member_of_a_base_class_is_documented():
    import econash

    for hook, base_name in BASES.items():
        base = getattr(econash, base_name)
        spans = {m.group(1) for s in CODE_SPAN.findall(section(hooks_text(), hook)) if (m := CALL_FORM.match(s.strip()))}
        missing = sorted(set(getattr(base, "__abstractmethods__", ())) - spans)
        assert not missing, f"docs/hooks.md ({hook}) does not name econash.{base_name}'s abstract {missing}"
