"""Finished runs on the fake backend for the tests of `econash runs`, `show` and `report`
(tests/test_results_commands.py, tests/test_report_browser.py): a baseline whose replies hold
markup and a URL, the EcoNash method (strategy, actions, weights, commitment), a learning method
(learning curves, an untrained phase) and a comparison of two baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

FAST = ("--display", "none", "--no-cache", "--backend", "fake")


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    """The CLI in this process (its imports are paid once), stdout apart from stderr."""
    from econash.cli import build_cli
    from econash.plugins import make_plugin_manager

    return CliRunner().invoke(build_cli(make_plugin_manager(warn=False)), list(args), env=env, catch_exceptions=False)


def markup_reply(url: str) -> str:
    """A reply that would load ``url`` and run a script if a page inserted it unescaped."""
    return (f'<img src="{url}/img.png"><script>fetch("{url}/script")</script>'
            f'<link rel="stylesheet" href="{url}/style.css"> So 8 + 3 = 11. The answer is 11.')


def make_runs(root: Path, url: str = "http://127.0.0.1:9") -> dict[str, Path]:
    """Write the runs under ``root`` (a runs folder) and return their directories by name."""
    config = root.parent / f"{root.name}-script.yaml"
    config.write_text(yaml.safe_dump({"backend_options": {"script": [markup_reply(url)] * 3}}))
    runs = {
        "cot": ("--method", "cot", "--test-size", "3", "--config", str(config)),
        "econash": ("--method", "econash-untrained", "--test-size", "2", "-B", "method_options.embedder=hashing"),
        "learner": ("--method", "fake-learner", "--train-size", "8", "--test-size", "2",
                    "-B", "method_options.update_interval=2"),
    }
    paths = {}
    for name, args in runs.items():
        paths[name] = root / name
        result = invoke("run", *FAST, *args, "--run-dir", str(paths[name]))
        assert result.exit_code == 0, result.output
    paths["compare"] = root / "compare"
    result = invoke("compare", "--methods", "cot,sc", *FAST, "--test-size", "2", "--out", str(paths["compare"]))
    assert result.exit_code == 0, result.output
    return paths
