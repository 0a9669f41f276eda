"""Calibration: how much each executor action moves accuracy on a model, before anything is trained.

For every action of an econash action grid, the whole team plays the test questions with that one
fixed action (method ``econash-untrained``, ``policy: fixed``): team accuracy (the commitment's),
executor accuracy (each executor's own answer graded), each with a 95% Wilson interval, tokens per
question and the calls cut at their cap. The same questions for every action; strategies come from
the response cache after the first action, so they are the same text too. A learner only has
something to learn where the best fixed action beats the worst by more than the intervals.

    .venv/bin/python benchmarks/calibrate.py --test-size 40
    .venv/bin/python benchmarks/calibrate.py --task arith -B task_options.level=1 \\
        --temperatures 0,1 --styles short,steps,verify
    .venv/bin/python benchmarks/calibrate.py --smoke      # the fake backend: checks the script runs

Writes benchmarks/results/calibrate_<task>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def calibrate(args: argparse.Namespace) -> dict:
    import econash
    from econash.config import load_config
    from econash.runner import run
    from econash.rundir import RunDirectory
    from econash.stats import wilson_interval

    grid = {"temperatures": _floats(args.temperatures), "top_ps": _floats(args.top_ps),
            "styles": [s for s in args.styles.split(",") if s]}
    if args.budgets:
        grid["budgets"] = [int(v) for v in args.budgets.split(",")]
    from econash_plugins.methods.econash.actions import ActionGrid

    actions = ActionGrid(grid["temperatures"], grid["top_ps"], grid["styles"], grid.get("budgets"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(len(actions)):
            flags = {"backend": args.backend, "task": args.task, "method": "econash-untrained",
                     "test_size": args.test_size, "seed": args.seed, "display": "none",
                     "run_dir": str(Path(tmp) / f"action-{index}"), "cache": {"path": str(Path(tmp) / "cache.sqlite")},
                     "method_options": {**grid, "policy": "fixed", "fixed_action": index,
                                        **({"embedder": args.embedder} if args.embedder else {})}}
            if args.model:
                flags["model"] = args.model
            if args.data:
                flags["data"] = args.data
            config = load_config(flags=flags, overrides=args.B)
            started = time.perf_counter()
            summary = run(config)
            wall = time.perf_counter() - started
            task = econash.load_task(config.task, **config.task_options, data=config.data)
            problems = {p.id: p for p in task.load("test", config.test_size, config.seed)}
            events = RunDirectory(Path(config.run_dir)).read_jsonl(RunDirectory.EVENTS)
            executor = [task.grade_text(e["text"], problems[e["problem_id"]])[1].correct for e in events
                        if e.get("type") == "llm_call" and e.get("role") == "executor"]
            right = round((summary.accuracy or 0) * summary.n_test)
            rows.append({
                "action": actions[index].label(), "n": summary.n_test, "team_accuracy": summary.accuracy,
                "team_ci95": list(wilson_interval(right, summary.n_test)),
                "executor_accuracy": sum(map(bool, executor)) / len(executor) if executor else None,
                "executor_n": len(executor),
                "executor_ci95": list(wilson_interval(sum(map(bool, executor)), len(executor))),
                "tokens_per_question": summary.tokens.per_question,
                "executor_cut_at_cap": summary.by_role.get("executor").truncated if "executor" in summary.by_role else 0,
                "coordinator_cut_at_cap": summary.by_role["coordinator"].truncated if "coordinator" in summary.by_role else 0,
                "wall_s": round(wall, 1),
            })
            print(f"{rows[-1]['action']}: team {summary.accuracy:.3f}", file=sys.stderr, flush=True)
    best = max(rows, key=lambda r: r["team_accuracy"] or 0)
    worst = min(rows, key=lambda r: r["team_accuracy"] or 0)
    return {"benchmark": "calibrate", "task": args.task, "backend": args.backend, "model": summary.model,
            "overrides": list(args.B), "grid": grid, "rows": rows, "best": best["action"], "worst": worst["action"],
            "best_minus_worst": (best["team_accuracy"] or 0) - (worst["team_accuracy"] or 0)}


def print_table(result: dict) -> None:
    print(f"{result['task']} on {result['backend']} ({result['model']}), {result['rows'][0]['n']} questions per action")
    print(f"{'action':<28} {'team':>6} {'95% CI':>13} {'executor':>8} {'95% CI':>13} {'tokens/q':>9} "
          f"{'cut e/c':>8} {'wall s':>7}")
    for r in result["rows"]:
        team_ci = f"[{r['team_ci95'][0]:.2f}, {r['team_ci95'][1]:.2f}]"
        ex_ci = f"[{r['executor_ci95'][0]:.2f}, {r['executor_ci95'][1]:.2f}]"
        executor = "n/a" if r["executor_accuracy"] is None else f"{r['executor_accuracy']:.3f}"
        print(f"{r['action']:<28} {r['team_accuracy']:>6.3f} {team_ci:>13} {executor:>8} {ex_ci:>13} "
              f"{r['tokens_per_question']:>9.1f} {r['executor_cut_at_cap']:>3}/{r['coordinator_cut_at_cap']:<4} "
              f"{r['wall_s']:>7.1f}")
    print(f"best fixed action {result['best']} beats the worst {result['worst']} by "
          f"{result['best_minus_worst']:+.3f} (team accuracy)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local")
    parser.add_argument("--model", default=None)
    parser.add_argument("--task", default="arith")
    parser.add_argument("--data", default=None)
    parser.add_argument("--embedder", default=None)
    parser.add_argument("--test-size", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperatures", default="0,1")
    parser.add_argument("--top-ps", default="1")
    parser.add_argument("--styles", default="short,steps,verify")
    parser.add_argument("--budgets", default="")
    parser.add_argument("-B", action="append", default=[], metavar="KEY=VALUE", help="any config override")
    parser.add_argument("--smoke", action="store_true", help="fake backend, 2 questions, 2 actions")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.backend, args.embedder, args.test_size = "fake", "hashing", 2
        args.temperatures, args.styles = "0,1", "steps"
    result = calibrate(args)
    result["python"] = sys.version.split()[0]
    out = args.out or RESULTS / f"calibrate_{args.task}{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"written: {out}")
    return result


if __name__ == "__main__":
    main()
