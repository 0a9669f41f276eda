"""Quick start with the library API: evaluate chain of thought on the offline `arith` task.

    python examples/quick_start.py                    # embedded local model (SmolLM2-135M)
    python examples/quick_start.py --backend fake     # no model at all, for a smoke test
"""

from __future__ import annotations

import argparse

import econash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local")
    parser.add_argument("--task", default="arith")
    parser.add_argument("--test-size", type=int, default=5)
    parser.add_argument("--run-dir", default=None)
    args = parser.parse_args()

    # Parts are looked up by name in the registries that installed plugins fill.
    task = econash.load_task(args.task)
    print("first question:", task.load("test", 1, seed=0)[0].question)

    summary = econash.run(backend=args.backend, task=args.task, method="cot", test_size=args.test_size,
                          run_dir=args.run_dir, display="plain")
    print(f"accuracy {summary.accuracy:.2f} on {summary.n_test} questions, "
          f"{summary.tokens.per_question:.0f} tokens per question, {summary.llm_calls} calls")
    print("run directory:", summary.run_dir)


if __name__ == "__main__":
    main()
