"""The core stays small and light: no import of plugins/, and no heavy import at `import econash`."""

from __future__ import annotations

import ast
import subprocess
import sys

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
