"""Comments, docstrings and docs cite only documents that are in the repository.

A citation of notes kept outside it (in a folder beside the checkout) cannot be followed by a
reader of the code; what such notes said belongs in docs/ (the method's steps in
docs/econash-method.md, measurement rules in docs/measuring.md, the TravelPlanner scorer in
docs/travelplanner.md, machine facts in docs/install.md).
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO

SCANNED = ("econash", "plugins", "tests", "benchmarks", "examples", "docs", "README.md", "CONTRIBUTING.md", "Makefile")
SUFFIXES = {".py", ".md", ".sh", ".toml", ""}
#: names of files econash writes into a run or compare directory, not documents of the repository
WRITTEN_BY_ECONASH = {"compare.md"}
CITATION = re.compile(r"[\w./-]*[\w-]+\.md\b")


def scanned_files(root: Path) -> list[Path]:
    files = []
    for name in SCANNED:
        path = root / name
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in candidates if p.suffix in SUFFIXES and "results" not in p.relative_to(root).parts[1:2]]
    return files


def dangling_citations(root: Path) -> list[str]:
    """Every Markdown file name a scanned file mentions that is not a document of the repository at ``root``."""
    documents = {p.relative_to(root).as_posix() for p in root.rglob("*.md") if ".venv" not in p.parts}
    basenames = {Path(d).name for d in documents}
    dangling = []
    for path in scanned_files(root):
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            for cited in CITATION.findall(line):
                if cited in WRITTEN_BY_ECONASH:
                    continue
                inside = cited in documents if "/" in cited else cited in basenames
                if not inside or cited.startswith(("/", "..")):
                    dangling.append(f"{path.relative_to(root)}:{lineno} cites {cited}")
    return dangling


def test_every_cited_document_is_in_the_repository():
    assert not dangling_citations(REPO)
