"""Fill the tables of docs/results.md (between its two marker comments) and copy its plots to
docs/results/, from the compare runs that benchmarks/results.sh made: every number on that page
comes from those runs' reports.

    .venv/bin/python benchmarks/results_md.py [RUNS_DIR]    # default runs/results
    .venv/bin/python benchmarks/results_md.py --smoke [--out PAGE]

--smoke makes a small compare run of its own (the fake backend, arith, cot and econash on 2
questions) and fills a copy of the page from it, written to PAGE (default: results.md in
benchmarks/results/results_md_smoke/); docs/ is left alone. It checks that the page still reads
what `econash compare` writes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TASKS = ("arith", "gsm8k", "svamp", "strategyqa")
BEGIN, END = "<!-- tables: written by benchmarks/results_md.py -->", "<!-- end of tables -->"


def table(report: dict, untrained: dict | None) -> list[str]:
    sweep = "sweep_executors" in report
    head = ["method"] + (["executors"] if sweep else []) + [
        "accuracy", "tokens/question", "tokens/question by role", "calls/question", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["methods"]:
        roles = ", ".join(f"{role} {tokens:.0f}" for role, tokens in row["tokens_by_role_per_question"].items())
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        cells = [row["method"]] + ([str(row["executors"])] if sweep else []) + [
            accuracy, f"{row['tokens_per_question']:.0f}", roles, f"{row['calls_per_question']:.2f}",
            f"{row['wall_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
        if row["method"] == "econash" and untrained:
            lines.append(f"| econash, before training (random settings) | {untrained['accuracy']:.3f} | "
                         f"{untrained['tokens']['per_question']:.0f} | same prompts | "
                         f"{untrained['llm_calls'] / max(untrained['n_test'], 1):.2f} | - |")
    return lines


def render(runs: Path, docs: Path) -> Path:
    """Fill the results.md in ``docs`` from the compare runs under ``runs``; copy their plots to its results/."""
    (docs / "results").mkdir(exist_ok=True)
    sections = []
    for name in (*TASKS, "scaling"):
        folder = runs / name
        if not (folder / "compare.json").exists():
            continue
        report = json.loads((folder / "compare.json").read_text())
        summary = folder / "econash" / "summary.json"
        untrained = json.loads(summary.read_text()).get("untrained") if summary.exists() else None
        n_train = json.loads(summary.read_text())["n_train"] if summary.exists() else None
        title = f"## {name}" if name != "scaling" else "## Scaling: executors 1 to 8, single and multi"
        sections.append(title)
        sections.append("")
        trained = f", econash trained on {n_train} train questions first" if n_train else ""
        sections.append(f"{report['n_test']} test questions, seed {report['seed']}, {report['backend']} / "
                        f"{report['model']}{trained}.")
        sections.append("")
        sections.extend(table(report, untrained))
        for plot in ("accuracy_vs_tokens.png", "scaling.png"):
            if (folder / plot).exists():
                target = docs / "results" / f"{name}-{plot}"
                shutil.copyfile(folder / plot, target)
                sections += ["", f"![{name} {plot[:-4]}](results/{target.name})"]
        sections.append("")
    page = (docs / "results.md").read_text(encoding="utf-8")
    head, rest = page.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    body = "\n".join(sections).rstrip()
    (docs / "results.md").write_text(f"{head}{BEGIN}\n\n{body}\n\n{END}{tail}", encoding="utf-8")
    return docs / "results.md"


def smoke(out: Path) -> Path:
    """A fake-backend compare run in a temporary folder, rendered into a copy of the page at ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        runs, docs = Path(tmp) / "runs", Path(tmp) / "docs"
        docs.mkdir()
        shutil.copyfile(DOCS / "results.md", docs / "results.md")
        subprocess.run([sys.executable, "-m", "econash", "compare", "--methods", "cot,econash", "--backend", "fake",
                        "-B", "backend_options.echo=true", "--task", "arith", "--train-size", "2", "--test-size", "2",
                        "--seed", "0", "--no-cache", "--display", "none", "--out", str(runs / "arith")],
                       check=True, capture_output=True)
        page = render(runs, docs)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=Path, default=ROOT / "runs" / "results", help="the compare runs")
    parser.add_argument("--smoke", action="store_true", help="a small fake-backend run; docs/ is left alone")
    parser.add_argument("--out", type=Path, default=None, help="with --smoke: where the filled page goes")
    args = parser.parse_args()
    if args.smoke:
        written = smoke(args.out or ROOT / "benchmarks" / "results" / "results_md_smoke" / "results.md")
    else:
        written = render(args.runs, DOCS)
    print(f"written: {written}")


if __name__ == "__main__":
    main()
