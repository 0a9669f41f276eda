"""A run that fails to start leaves nothing that blocks the next one (issue 14): everything is checked
before the run directory exists; a failure before the manifest leaves a folder a new run may reuse; a
failure after it leaves a run that `econash resume` finishes."""

from __future__ import annotations

import json

from click.testing import CliRunner

import econash
from econash.cli import build_cli
from econash.errors import BackendError
from econash.plugins import make_plugin_manager
from econash.runner import Components, resume, run
from econash.testing import FakeBackend

ECONASH = ["run", "--backend", "fake", "--method", "econash", "--train-size", "2", "--test-size", "2",
           "--display", "none", "-B", "method_options.embedder=hashing"]
COT = ["run", "--backend", "fake", "--method", "cot", "--test-size", "3", "--display", "none", "--no-cache"]


def invoke(args: list[str]):
    return CliRunner().invoke(build_cli(make_plugin_manager(warn=False)), args)


def test_a_method_that_fails_on_its_config_leaves_no_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    failed = invoke([*ECONASH, "--run-dir", str(run_dir), "-B", "method_options.styles=[]"])
    assert failed.exit_code == 2 and "action grid" in failed.output
    assert not run_dir.exists()
    again = invoke([*COT, "--run-dir", str(run_dir)])  # the same --run-dir, fixed command
    assert again.exit_code == 0, again.output
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 3


def test_a_folder_the_user_made_is_kept_empty_and_reusable(tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    failed = invoke([*ECONASH, "--run-dir", str(run_dir), "-B", "method_options.temperatures=[]"])
    assert failed.exit_code == 2 and "action grid" in failed.output
    assert run_dir.is_dir() and not any(run_dir.iterdir())
    assert invoke([*COT, "--run-dir", str(run_dir)]).exit_code == 0


def test_a_wrong_typed_backend_option_fails_before_any_call(tmp_path):
    run_dir = tmp_path / "run"
    failed = invoke([*COT, "--run-dir", str(run_dir), "-B", "backend_options.latency_s=abc"])
    assert failed.exit_code == 2 and "latency_s" in failed.output and "abc" in failed.output
    assert not run_dir.exists()


def test_an_unopenable_cache_fails_before_the_run_directory(tmp_path, monkeypatch):
    (tmp_path / "cachefile").write_text("a file where the cache folder should be")
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp_path / "cachefile"))
    run_dir = tmp_path / "run"
    failed = invoke(["run", "--backend", "fake", "--method", "cot", "--test-size", "2", "--display", "none",
                     "--run-dir", str(run_dir)])
    assert failed.exit_code == 2 and "cache" in failed.output and "--no-cache" in failed.output
    assert "internal error" not in failed.output and not run_dir.exists()


class FailAfter:
    """Answers correctly-formed text, then fails fatally from call ``n`` on (an expired key, say)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, request) -> str:
        self.calls += 1
        if self.calls > self.n:
            raise BackendError("the server refused the key; set OPENAI_API_KEY and resume.")
        return "The answer is 4."


def test_a_failure_after_the_start_leaves_a_run_that_resume_finishes(tmp_path):
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries)
    method = econash.load_method("cot", registries=registries)
    config = econash.RunConfig(backend="fake", method="cot", test_size=6, concurrency=1, display="none",
                               run_dir=tmp_path / "run", cache={"train": False, "eval": False})
    broken = Components(backend=FakeBackend(responder=FailAfter(2)), task=task, method=method)
    try:
        run(config, registries=registries, components=broken)
    except BackendError:
        pass
    else:  # pragma: no cover - the backend fails on its third call
        raise AssertionError("the run should have stopped")
    run_dir = tmp_path / "run"
    assert (run_dir / "manifest.json").is_file()
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 2
    fixed = Components(backend=FakeBackend(responder=FailAfter(100)), task=task, method=method)
    summary = resume(run_dir, registries=registries, components=fixed)
    ids = [json.loads(line)["id"] for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert summary.complete and summary.n_test == 6 and len(ids) == len(set(ids)) == 6


def test_resume_of_a_folder_that_never_started_says_to_run_again(tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    result = invoke(["resume", str(run_dir)])
    assert result.exit_code == 2 and "manifest.json" in result.output and "`econash run`" in result.output


def test_an_empty_data_file_is_an_error_not_a_complete_run(tmp_path):
    data = tmp_path / "test.jsonl"
    data.write_text("")
    run_dir = tmp_path / "run"
    result = invoke(["run", "--backend", "fake", "--method", "cot", "--task", "gsm8k", "--data", str(data),
                     "--display", "none", "--run-dir", str(run_dir)])
    assert result.exit_code == 2 and "no questions" in result.output and str(data) in result.output
    assert len(result.output.strip().splitlines()) == 1 and not run_dir.exists()


def test_an_empty_question_names_its_file_and_line(tmp_path):
    data = tmp_path / "test.jsonl"
    good = json.dumps({"question": "What is 2 + 2?", "answer": "#### 4"})
    data.write_text(f"{good}\n{good.replace('2 + 2', '3 + 1')}\n" + json.dumps({"question": " ", "answer": "#### 1"})
                    + "\n")
    result = invoke(["run", "--backend", "fake", "--method", "cot", "--task", "gsm8k", "--data", str(data),
                     "--display", "none", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2 and f"{data} line 3" in result.output and "empty question" in result.output



def test_a_run_that_failed_before_any_question_may_be_started_again_in_its_folder(tmp_path):
    # A fatal error on the first call (a model name the server does not know, say) is in the config,
    # which resume cannot change: the same --run-dir must take the corrected run.
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries)
    method = econash.load_method("cot", registries=registries)
    run_dir = tmp_path / "run"
    config = econash.RunConfig(backend="fake", method="cot", test_size=3, display="none", run_dir=run_dir,
                               cache={"train": False, "eval": False})
    try:
        run(config, registries=registries, components=Components(backend=FakeBackend(responder=FailAfter(0)),
                                                                 task=task, method=method))
    except BackendError:
        pass
    assert (run_dir / "manifest.json").is_file() and '"abort"' in (run_dir / "events.jsonl").read_text()
    again = invoke([*COT, "--run-dir", str(run_dir)])
    assert again.exit_code == 0, again.output
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 3
    assert '"abort"' not in (run_dir / "events.jsonl").read_text()  # the failed attempt's log went with it


def test_a_run_that_finished_questions_is_never_started_over(tmp_path):
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries)
    method = econash.load_method("cot", registries=registries)
    run_dir = tmp_path / "run"
    config = econash.RunConfig(backend="fake", method="cot", test_size=3, concurrency=1, display="none",
                               run_dir=run_dir, cache={"train": False, "eval": False})
    try:
        run(config, registries=registries, components=Components(backend=FakeBackend(responder=FailAfter(1)),
                                                                 task=task, method=method))
    except BackendError:
        pass
    refused = invoke([*COT, "--run-dir", str(run_dir)])
    assert refused.exit_code == 2 and "econash resume" in refused.output
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 1


def test_a_method_sees_the_run_through_typed_fields(tmp_path, econash_register_plugin, econash_plugin_manager):
    seen = []

    class Recorder(econash.Method):
        """Records the RunContext it is set up with; answers 7."""

        name = "recorder"

        async def setup(self, run):
            seen.append(run)

        async def solve(self, problem, episode):
            await episode.call([{"role": "user", "content": problem.question}])
            return "7"

    class Plugin:
        @econash.hookimpl
        def register_methods(self, register):
            register("recorder", Recorder)

    econash_register_plugin(Plugin(), name="recorder")
    registries = econash.registries(econash_plugin_manager)
    config = econash.RunConfig(backend="fake", method="recorder", test_size=2, display="none",
                               run_dir=tmp_path / "run", cache={"train": False, "eval": False})
    run(config, pm=econash_plugin_manager, registries=registries)
    context, = seen
    assert context.run_dir == tmp_path / "run" and (context.run_dir / "manifest.json").is_file()
    assert context.config.method == "recorder" and context.config.test_size == 2
    assert context.registries is registries and context.plugin_manager is econash_plugin_manager
    assert context.extras == {}
