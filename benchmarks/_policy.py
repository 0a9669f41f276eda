"""``benchmarks/learning.py policy``: does training help on a real model (docs/measuring.md's rules).

Every policy answers the same test questions, each in its own econash run under ``--out``:

1. ``dev-action-K``: every action of the econash grid held fixed for the whole team, on a dev slice
   of the train split (the ``--dev-size`` questions after the training ones), never on test;
2. ``econash``: training on ``--train-size`` episodes with the greedy policy scored on that dev
   slice every ``--dev-every`` updates (the learning curve), then the untrained policy (random
   actions) and the trained one (greedy) on the test questions, paired (McNemar's exact test);
3. ``best-fixed`` and ``worst-fixed``: the actions with the highest and lowest dev accuracy, on test;
4. ``cot``: chain of thought at temperature 0, on test.

Tokens per question count everything a policy needed, amortised over the test questions: training
and its dev scoring for the trained policy, the dev runs of every action for the fixed ones (choosing
an action costs what trying them all cost). A finished step is reused when the command runs again,
so an interrupted benchmark continues where it stopped. Writes ``<out>/learning-policy.json`` (and,
with ``--publish``, docs/results/learning-policy.json and the learning-curve PNG).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

DOCS_RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


class DevSliceTask:
    """A task whose test split is the dev slice of another task's train split (questions
    ``train_size`` to ``train_size + dev_size`` of it, the ones econash's own dev slice uses), so a
    fixed action can be chosen without looking at a test question."""

    def __init__(self, task: Any, train_size: int, dev_size: int) -> None:
        self._task, self._start, self._size = task, train_size, dev_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def load(self, split: str, size: int | None, seed: int) -> list[Any]:
        problems = self._task.load("train", self._start + self._size, seed)[self._start:]
        return problems if size is None else problems[:size]


def _finished(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("complete") else None


def _run(run_dir: Path, flags: dict[str, Any], *, dev_slice: tuple[int, int] | None = None) -> dict[str, Any]:
    """One econash run (reused when it already finished; resumed when it stopped part way)."""
    import econash
    from econash.runner import Components, resume, run_async

    done = _finished(run_dir)
    if done is not None:
        return done
    if run_dir.exists() and dev_slice is None and (run_dir / "manifest.json").exists():
        resume(run_dir)
        return json.loads((run_dir / "summary.json").read_text())
    shutil.rmtree(run_dir, ignore_errors=True)  # a dev-slice run cannot be resumed through the CLI: redo it
    config = econash.RunConfig.model_validate({**flags, "run_dir": run_dir})
    if dev_slice is None:
        summary = econash.run(config)
    else:
        registries = econash.registries()
        components = Components.build(config, registries)
        components.task = DevSliceTask(components.task, *dev_slice)  # type: ignore[assignment]
        summary = asyncio.run(run_async(config, registries=registries, components=components))
    return json.loads(summary.model_dump_json())


def _policy(summary: dict[str, Any], extra_tokens: float = 0.0, untrained: bool = False) -> dict[str, Any]:
    from econash.stats import wilson_interval

    part = summary["untrained"] if untrained else summary
    n = summary["n_test"]
    accuracy = part["accuracy"] or 0.0
    low, high = wilson_interval(round(accuracy * n), n)
    eval_tokens = part["tokens"]["per_question"]
    return {"accuracy": accuracy, "ci": [low, high], "n": n,
            "tokens_per_question": round(eval_tokens + extra_tokens / n, 1),
            "eval_tokens_per_question": eval_tokens, "llm_calls": part["llm_calls"]}


def _curve(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{"episodes": r["episodes"], "update": r["step"], "dev_score": r["dev_score"], "dev_n": r["dev_n"],
             "ci": r["dev_ci95"]} for r in rows if "dev_score" in r]


def bench_policy(args: Any) -> dict[str, Any]:
    from econash_plugins.methods.econash.actions import ActionGrid
    from econash_plugins.methods.econash.options import EcoNashOptions

    out = Path(args.out_dir)
    # One response cache for every step: the strategy of a question, and an executor's answer under the same
    # action and draw, are the same text in every policy, so they are generated once.
    common: dict[str, Any] = {"backend": args.backend, "task": args.task, "seed": args.seed, "display": "plain",
                              "test_size": args.test_size, "cache": {"path": str(out / "cache.sqlite")}}
    for key in ("data", "model"):
        if getattr(args, key):
            common[key] = getattr(args, key)
    method_options: dict[str, Any] = {"embedder": args.embedder} if args.embedder else {}
    defaults = EcoNashOptions()
    grid = ActionGrid(defaults.temperatures, defaults.top_ps, defaults.styles, defaults.budgets)

    # 1. every fixed action on the dev slice
    dev_runs = {}
    for index in range(len(grid)):
        flags = {**common, "method": "econash-untrained", "test_size": args.dev_size,
                 "method_options": {**method_options, "policy": "fixed", "fixed_action": index}}
        dev_runs[index] = _run(out / f"dev-action-{index}", flags, dev_slice=(args.train_size, args.dev_size))
    dev_accuracy = {index: s["accuracy"] or 0.0 for index, s in dev_runs.items()}
    dev_tokens = sum(s["tokens"]["total"] for s in dev_runs.values())
    best = max(dev_accuracy, key=lambda i: (dev_accuracy[i], -i))
    worst = min(dev_accuracy, key=lambda i: (dev_accuracy[i], -i))  # ties: best the first, worst the last

    # 2. train with a learning curve on the dev slice; untrained and trained on test
    trained = _run(out / "econash", {**common, "method": "econash", "train_size": args.train_size,
                                     "dev": {"size": args.dev_size, "every": args.dev_every},
                                     "method_options": method_options, "eval_untrained": True,
                                     "cache": {**common["cache"], "train": False, "eval": True}})
    # 3. the best and worst fixed actions on test; 4. chain of thought, greedy
    fixed = {name: _run(out / f"{name}-fixed", {**common, "method": "econash-untrained",
                                                "method_options": {**method_options, "policy": "fixed",
                                                                   "fixed_action": index}})
             for name, index in (("best", best), ("worst", worst))}
    cot = _run(out / "cot", {**common, "method": "cot", "method_options": {"temperature": 0.0}})

    comparison = trained.get("comparison") or {}
    result = {
        "benchmark": "learning_policy", "task": args.task, "backend": args.backend, "model": trained["model"],
        "seed": args.seed, "train_episodes": trained["n_train"], "dev_size": args.dev_size,
        "train_tokens": trained["tokens"]["train"]["total"],
        "policies": {
            "trained": _policy(trained, trained["tokens"]["train"]["total"]),
            "untrained": _policy(trained, untrained=True),
            "best_fixed": {**_policy(fixed["best"], dev_tokens), "action": grid[best].label(),
                           "dev_accuracy": dev_accuracy[best]},
            "worst_fixed": {**_policy(fixed["worst"], dev_tokens), "action": grid[worst].label(),
                            "dev_accuracy": dev_accuracy[worst]},
            "cot": {**_policy(cot), "temperature": 0.0},
        },
        "paired_p": comparison.get("p_value"),
        "paired": {k: comparison.get(k) for k in ("difference", "only_a", "only_b", "verdict")},
        "trained_actions": trained.get("executor_actions"),
        "dev_actions": {grid[i].label(): dev_accuracy[i] for i in sorted(dev_accuracy)},
        "learning_curve": _curve(out / "econash"),
        "out": str(out),
    }
    trained_acc, best_acc = result["policies"]["trained"]["accuracy"], result["policies"]["best_fixed"]["accuracy"]
    result["targets"] = {
        "trained_above_untrained_p_below_0.05": bool(result["paired_p"] is not None and result["paired_p"] < 0.05
                                                     and trained_acc > result["policies"]["untrained"]["accuracy"]),
        "trained_within_90pct_of_best_fixed": bool(best_acc == 0 or trained_acc >= 0.9 * best_acc),
    }
    (out / "learning-policy.json").write_text(json.dumps(result, indent=2))
    plot_curve(result, out / "learning-curve.png")
    if args.publish:
        DOCS_RESULTS.mkdir(parents=True, exist_ok=True)
        (DOCS_RESULTS / "learning-policy.json").write_text(json.dumps(result, indent=2) + "\n")
        shutil.copyfile(out / "learning-curve.png", DOCS_RESULTS / "learning-curve.png")
    return result


def plot_curve(result: dict[str, Any], path: Path) -> None:
    """Greedy dev accuracy against training episodes with its Wilson band, and the test-set references."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    curve = result["learning_curve"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if curve:
        x = [p["episodes"] for p in curve]
        ax.plot(x, [p["dev_score"] for p in curve], marker="o", label="trained (greedy), dev slice")
        ax.fill_between(x, [p["ci"][0] for p in curve], [p["ci"][1] for p in curve], alpha=0.2)
    lines = (("untrained", ":", "grey"), ("best_fixed", "--", "grey"), ("worst_fixed", "-.", "grey"),
             ("cot", "--", "tab:orange"))
    for name, style, colour in lines:
        policy = result["policies"][name]
        ax.axhline(policy["accuracy"], linestyle=style, color=colour, label=f"{name} (test, n={policy['n']})")
    ax.set_xlabel("training episodes")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"econash learning curve: {result['task']} on {result['model']}")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_policy(result: dict[str, Any]) -> None:
    print(f"{result['task']} on {result['backend']} ({result['model']}): {result['train_episodes']} train episodes "
          f"({result['train_tokens']} tokens), dev slice of {result['dev_size']}")
    print(f"{'policy':<12} {'accuracy':>8} {'95% CI':>14} {'n':>4} {'tokens/q':>9} {'eval tokens/q':>13}  action")
    for name, p in result["policies"].items():
        ci = f"[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]"
        print(f"{name:<12} {p['accuracy']:>8.3f} {ci:>14} {p['n']:>4} {p['tokens_per_question']:>9.1f} "
              f"{p['eval_tokens_per_question']:>13.1f}  {p.get('action', '')}")
    print(f"trained vs untrained: McNemar p = {result['paired_p']}; targets: {result['targets']}")
    for point in result["learning_curve"]:
        print(f"  after {point['episodes']:>4} episodes: dev {point['dev_score']:.3f} "
              f"[{point['ci'][0]:.2f}, {point['ci'][1]:.2f}] (n={point['dev_n']})")
