"""What a wheel of econash carries and what CI checks: the declared license, the py.typed marker, and
the type checker in the dev extra, the Makefile and .ci/run."""

from __future__ import annotations

import hashlib
import re

from conftest import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]


def distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement string ("together>=3.0" -> "together")."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def names(requirements: list[str]) -> set[str]:
    return {distribution(r) for r in requirements}


def test_dev_has_the_type_checker_and_ci_runs_it():
    assert {"pytest", "mypy", "types-pyyaml"} <= names(EXTRAS["dev"])
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^typecheck: .*\n\t\$\(BIN\)/mypy\b", makefile, re.MULTILINE)
    assert "make typecheck" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    mypy = PYPROJECT["tool"]["mypy"]
    assert mypy["files"] == ["econash"] and "pydantic.mypy" in mypy["plugins"]


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
