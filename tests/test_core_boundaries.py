"""The core stays small and light: no import of plugins/, and no heavy import at `import econash`.
The first-party plugins use only the core's public names, as a third-party package must."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap

from conftest import REPO

FORBIDDEN = ("econash_plugins", "plugins")


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_core_never_imports_first_party_plugins():
    offenders = []
    for path in (REPO / "econash").rglob("*.py"):
        for module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, offenders


def test_core_source_never_names_the_plugins_package_in_strings():
    # importlib.import_module("econash_plugins...") would dodge the AST check above.
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "econash").rglob("*.py")
                 if "econash_plugins" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_import_econash_does_not_load_heavy_dependencies():
    code = ("import sys, econash; heavy = [m for m in ('torch', 'openai', 'anthropic', 'together', 'llama_cpp', "
            "'sentence_transformers') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import econash loaded: {out.stdout.strip()}"


def test_cli_help_does_not_load_heavy_dependencies():
    code = ("import sys\nfrom econash.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'openai', 'anthropic', 'together', 'llama_cpp') if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout + "\n" and out.stdout.strip().endswith("HEAVY="), out.stdout


def test_core_imports_boundary_models_from_their_family_modules():
    # econash.types only re-exports (for plugins and older code); the core names the family module,
    # so the import graph shows which family a module depends on.
    offenders = []
    for path in (REPO / "econash").rglob("*.py"):
        if path.name == "types.py" and path.parent.name == "econash":
            continue
        offenders += [f"{path.relative_to(REPO)} imports {m}" for m in imported_modules(path) if m == "econash.types"]
    assert not offenders, offenders


def test_the_types_facade_re_exports_every_boundary_model():
    import econash.types as facade
    from econash import call_types, config_types, run_records, strict_model, task_types, topology

    families = [call_types, task_types, config_types, run_records, strict_model]
    public = {name for module in families for name, value in vars(module).items()
              if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__}
    public |= {"ClusterLayout", "ExecutorBackend", "SCHEMA_VERSION", "MAX_SEED", "CAP_FINISH_REASONS"}
    missing = sorted(name for name in public if name not in facade.__all__ or not hasattr(facade, name))
    assert not missing, f"econash.types lacks: {missing}"
    assert facade.ClusterLayout is topology.ClusterLayout and facade.RunConfig is config_types.RunConfig


# ---------------------------------------------------------------- plugins use public names only

PLUGINS = REPO / "plugins" / "econash_plugins"


def is_private(name: str) -> bool:
    """``_x`` is private; ``__x__`` (``__version__``, ``__init__``) is not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_core(module: str) -> bool:
    return module == "econash" or module.startswith("econash.")


def private_core_uses(source: str) -> list[str]:
    """Every underscore name of the core that ``source`` imports or reaches through an imported name:
    ``from econash.x import _y``, ``import econash._x``, ``from econash.x._y import z`` and
    ``econash.x._y`` or ``Imported._y`` attribute access."""
    tree = ast.parse(source)
    found: list[str] = []
    bound: set[str] = set()  # local names for core modules and objects
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_core(alias.name):
                    if any(is_private(part) for part in alias.name.split(".")):
                        found.append(f"import {alias.name}")
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and is_core(node.module):
            if any(is_private(part) for part in node.module.split(".")):
                found.append(f"from {node.module} import ...")
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"from {node.module} import {alias.name}")
                bound.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in bound:
                found.append(ast.unparse(node))
    return found


def test_the_checker_finds_each_kind_of_private_use():
    source = textwrap.dedent("""
        import econash.testing._http_server
        import econash.sdk_backend as sdk
        from econash.cli import AppState, _load_config
        from econash.testing._http_server import LoopbackServer
        from econash import __version__, engine
        from econash_plugins.tasks import _local_helper
        x = sdk._short("text")
        y = AppState._registries
        z = engine.cache._DAMAGED
    """)
    assert sorted(private_core_uses(source)) == sorted([
        "import econash.testing._http_server",
        "from econash.cli import _load_config",
        "from econash.testing._http_server import ...",
        "sdk._short", "AppState._registries", "engine.cache._DAMAGED",
    ])


def plugin_modules() -> list[str]:
    import econash_plugins

    return ["econash_plugins"] + [info.name for info in pkgutil.walk_packages(econash_plugins.__path__,
                                                                               "econash_plugins.")]


def test_plugin_modules_import_no_private_name_of_the_core():
    offenders = {str(path.relative_to(REPO)): uses for path in sorted(PLUGINS.rglob("*.py"))
                 if (uses := private_core_uses(path.read_text(encoding="utf-8")))}
    assert not offenders, offenders


def private_members(cls: type) -> set[str]:
    """The underscore names a core class defines: in its body, or as ``self._x = ...`` in its methods."""
    names = {name for name in vars(cls) if is_private(name)}
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and is_private(node.attr)
                and isinstance(node.value, ast.Name) and node.value.id == "self"):
            names.add(node.attr)
    return names


def test_plugin_classes_use_no_private_member_of_a_core_base_class():
    """Overriding, calling or reading a core base class's ``_x`` from a plugin class ties the plugin to the
    base's internals: every hook a subclass needs is public."""
    offenders: list[str] = []
    for module_name in plugin_modules():
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module_name:
                continue
            core = set().union(*(private_members(base) for base in cls.__mro__[1:] if is_core(base.__module__)))
            if not core:
                continue
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in core:
                    offenders.append(f"{module_name}.{cls.__name__} overrides {node.name}")
                elif isinstance(node, ast.Attribute) and node.attr in core and (
                        isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
                        or isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "super"):
                    offenders.append(f"{module_name}.{cls.__name__} uses {ast.unparse(node)}")
    assert not offenders, sorted(set(offenders))
