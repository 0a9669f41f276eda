"""The training and evaluation loops, with checkpoints that let a killed run resume exactly.

Training runs ``update_interval`` episodes concurrently, then one learner update, then (every
``checkpoint_every`` updates and at the end) a checkpoint of the method, the train ledger and the
position in the train split. With a dev slice, every ``dev.every`` updates the greedy policy answers
the dev questions (phase ``dev``, its calls counted with training's), the score goes into
metrics.jsonl, and training stops early once it has plateaued (econash.early_stopping).
Evaluation appends one line per finished question to results.jsonl, so a resumed evaluation skips
exactly the questions already answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Coroutine, Iterable

from econash.config_types import DevConfig
from econash.display import Progress
from econash.early_stopping import plateaued
from econash.engine.context import RunContext
from econash.engine.ledger import CostLimitReached, Ledger
from econash.errors import DamagedCheckpointError, DamagedRunError, EconashError
from econash.method import Method
from econash.plugins import EconashPluginManager
from econash.run_records import ResultRecord
from econash.rundir import RunDirectory
from econash.stats import wilson_interval
from econash.task_types import Problem, Score

# 2: per-executor strategy embeddings, rounds and target networks; 3: failed-executor masks in the
# buffer, factored Q heads and dev-slice scores in the train state
CHECKPOINT_FORMAT = 3


async def run_all(coroutines: Iterable[Coroutine[Any, Any, None]], limit: int) -> None:
    """Run coroutines at most ``limit`` at a time; the first exception cancels the rest and is raised."""
    semaphore = asyncio.Semaphore(limit)

    async def bounded(coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            async with semaphore:
                await coroutine
        finally:
            coroutine.close()  # one cancelled before it started is closed, not left un-awaited

    tasks = [asyncio.ensure_future(bounded(c)) for c in coroutines]
    if not tasks:
        return
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        raise
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    # Retrieve every exception (asyncio would log the unretrieved ones with a traceback), raise the first.
    outcomes = [task.exception() for task in tasks if task.done() and not task.cancelled()]
    errors = [error for error in outcomes if error is not None]
    if errors:
        raise errors[0]


@dataclass
class TrainState:
    """Where training is: episodes of the train split done, learner updates, finished or not."""

    episodes_done: int = 0
    updates: int = 0
    done: bool = False
    stopped_early: bool = False
    #: the greedy policy's mean score on the dev slice, one entry per dev evaluation
    dev_scores: list[float] = field(default_factory=list)


class Checkpointer:
    """Writes complete checkpoints atomically into RUN_DIR/checkpoints and finds the latest that loads."""

    def __init__(self, rundir: RunDirectory, pm: EconashPluginManager, keep: int = 3) -> None:
        self.rundir = rundir
        self.dir = rundir.path / RunDirectory.CHECKPOINTS
        self.pm = pm
        self.keep = keep

    def save(self, method: Method, train_ledger: Ledger, state: TrainState) -> Path:
        import io

        import torch  # checkpoints hold torch tensors of learning methods; imported only when used

        payload = {
            "format": CHECKPOINT_FORMAT,
            "train_state": asdict(state),
            "ledger": train_ledger.to_dict(),
            "method": method.state_dict(),
        }
        # Serialised in memory, then written whole or not at all (a full disk leaves the last one the latest).
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        name = f"ckpt-{state.updates:06d}-{state.episodes_done:06d}.pt"
        path = self.rundir.write_atomically(f"{RunDirectory.CHECKPOINTS}/{name}", buffer.getvalue(), fsync=True)
        for old in self.all()[: -self.keep]:
            old.unlink(missing_ok=True)
        self.pm.notify("on_checkpoint", path=path, step=state.updates)
        return path

    def all(self) -> list[Path]:
        return sorted(self.dir.glob("ckpt-*.pt"))

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    def load_latest(self) -> tuple[Path | None, dict[str, Any] | None, list[DamagedCheckpointError]]:
        """The newest checkpoint that loads, with the newer ones that did not (cut by a copy, a disk
        fault). Those are renamed NAME.damaged, kept for a look but never again taken for the latest.
        (None, None, []) when there is no checkpoint; one sentence when none loads."""
        damaged: list[DamagedCheckpointError] = []
        for path in reversed(self.all()):
            try:
                payload = self.load(path)
            except DamagedCheckpointError as exc:
                damaged.append(exc)
                continue
            for bad in damaged:
                bad.path.rename(bad.path.with_name(bad.path.name + ".damaged"))
            return path, payload, damaged
        if damaged:
            raise DamagedRunError(f"No checkpoint in '{self.dir}' can be read ({damaged[0].path.name}: "
                                  f"{damaged[0].reason}); move them out of that folder to train again from the "
                                  "start, or start a new run.")
        return None, None, []

    @staticmethod
    def load(path: Path) -> dict[str, Any]:
        import torch

        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001  (a cut zip, garbage bytes, a bad pickle: all mean damage)
            raise DamagedCheckpointError(path, _short_reason(exc)) from None
        if not isinstance(payload, dict) or not {"train_state", "ledger", "method"} <= payload.keys():
            raise DamagedCheckpointError(path, "it holds no econash checkpoint")
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise EconashError(f"Checkpoint '{path}' has format {payload.get('format')}, not {CHECKPOINT_FORMAT}; "
                               "it was written by another econash version.")
        return payload

    @staticmethod
    def restore_method(method: Method, payload: dict[str, Any], path: Path) -> None:
        """Load a checkpoint's method state; a state that does not fit the method as configured (another
        team, other options) is one sentence, not the hundreds of parameter names torch would list."""
        try:
            method.load_state_dict(payload["method"])
        except EconashError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise EconashError(f"Checkpoint '{path}' does not fit method '{getattr(method, 'name', '?')}' as "
                               f"configured ({type(exc).__name__}); use the settings of the run that wrote it.") from None


def _short_reason(exc: BaseException) -> str:
    """The first sentence of an exception's message, printable and short (torch's run to a paragraph)."""
    text = str(exc).split(". ")[0].strip().rstrip(".") or type(exc).__name__
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 120 else text[:117] + "..."


async def train_loop(
    problems: list[Problem],
    method: Method,
    run: RunContext,
    rundir: RunDirectory,
    pm: EconashPluginManager,
    progress: Progress,
    *,
    concurrency: int,
    checkpoint_every: int,
    state: TrainState,
    checkpointer: Checkpointer,
    dev_problems: list[Problem] | None = None,
    dev: DevConfig | None = None,
) -> TrainState:
    """Train from ``state.episodes_done`` to the end of ``problems`` or an early stop."""
    dev = dev or DevConfig()
    dev_problems = dev_problems or []
    progress.start_phase("train", len(problems), done=state.episodes_done)
    interval = max(1, int(method.update_interval))
    while state.episodes_done < len(problems) and not run.engine.stopped:
        start = state.episodes_done
        batch = problems[start : start + interval]
        records: list[dict[str, Any] | None] = [None] * len(batch)

        async def one(offset: int, problem: Problem) -> None:
            progress.started()
            episode = run.episode("train", index=start + offset, problem_id=problem.id)
            try:
                record = await method.train_episode(problem, episode)
            except CostLimitReached:
                progress.abandoned()
                return
            except EconashError:
                raise
            except Exception as exc:  # recorded as a failed episode; the learner never sees it
                record = {"error": f"{type(exc).__name__}: {exc}"}
            records[offset] = {"type": "episode", "phase": "train", "index": start + offset, "id": problem.id,
                               "tokens": episode.usage.total_tokens, "calls": len(episode.calls), **record}
            progress.finished(None, episode.usage.total_tokens)

        await run_all((one(k, p) for k, p in enumerate(batch)), concurrency)
        if run.engine.stopped:
            break  # the batch is incomplete: the checkpoint before it stays the resume point
        for record in records:
            assert record is not None  # run_all returned without raising: every episode wrote its record
            rundir.append(RunDirectory.EVENTS, record)
            pm.notify("on_episode_end", phase="train", index=record["index"], record=record)
        state.episodes_done = start + len(batch)
        metrics = method.update()
        stop_on_dev = False
        if metrics is not None:
            state.updates += 1
            row = {"step": state.updates, "episodes": state.episodes_done, **metrics}
            if dev_problems and state.updates % dev.every == 0:
                row.update(await _score_dev(dev_problems, method, run, progress, concurrency, state))
                if not run.engine.stopped:
                    state.dev_scores.append(row["dev_score"])
                    stop_on_dev = (dev.early_stopping and not method.exploring()
                                   and plateaued(state.dev_scores, dev.patience, dev.min_delta))
            if run.engine.stopped:  # a dev evaluation cut short by the cost limit: the checkpoint
                state.episodes_done, state.updates = start, state.updates - 1  # before this batch resumes
                break
            rundir.append(RunDirectory.METRICS, row)
            pm.notify("on_train_step", step=state.updates, metrics=row)
        stop = method.should_stop() or stop_on_dev
        state.done = stop or state.episodes_done >= len(problems)
        state.stopped_early = stop and state.episodes_done < len(problems)
        if state.done or (metrics is not None and state.updates % checkpoint_every == 0):
            checkpointer.save(method, run.ledger("train"), state)
        if stop:
            break
    return state


async def _score_dev(problems: list[Problem], method: Method, run: RunContext, progress: Progress,
                     concurrency: int, state: TrainState) -> dict[str, Any]:
    """The greedy policy's score on the dev slice (a failed episode scores 0), for metrics.jsonl."""
    scores: list[Score | None] = [None] * len(problems)

    async def one(index: int, problem: Problem) -> None:
        episode = run.episode("dev", index=index, problem_id=problem.id)
        try:
            text = await method.solve(problem, episode)
        except CostLimitReached:
            return
        except EconashError:
            raise
        except Exception:  # noqa: BLE001  (scored as wrong, like a failed evaluation episode)
            scores[index] = Score(correct=False, score=0.0)
            return
        scores[index] = run.task.grade_text(text, problem)[1]

    await run_all((one(i, p) for i, p in enumerate(problems)), concurrency)
    done = [s for s in scores if s is not None]
    mean = sum(s.score for s in done) / len(done) if done else 0.0
    correct = sum(1 for s in done if s.correct)
    low, high = wilson_interval(correct, len(done))
    progress.note(f"dev after {state.episodes_done} episodes: {mean:.3f} [{low:.2f}, {high:.2f}] (n={len(done)})")
    return {"dev_score": mean, "dev_n": len(done), "dev_ci95": [low, high]}


async def evaluate_loop(
    problems: list[Problem],
    method: Method,
    run: RunContext,
    rundir: RunDirectory,
    pm: EconashPluginManager,
    progress: Progress,
    *,
    concurrency: int,
    done_ids: set[str],
    phase: str = "eval",
    results_name: str = RunDirectory.RESULTS,
) -> None:
    """Evaluate greedily; append one results line per question not in ``done_ids``."""
    todo = [(i, p) for i, p in enumerate(problems) if p.id not in done_ids]
    progress.start_phase(phase, len(problems), done=len(problems) - len(todo))
    task = run.task

    async def one(index: int, problem: Problem) -> None:
        progress.started()
        episode = run.episode(phase, index=index, problem_id=problem.id)
        error = None
        try:
            text = await method.solve(problem, episode)
        except CostLimitReached:
            progress.abandoned()
            return  # not recorded: a resumed run answers it
        except EconashError:
            raise
        except Exception as exc:  # a failed episode is recorded as failed, never silently scored
            text, error = "", f"{type(exc).__name__}: {exc}"
        if error is None:
            answer, score = task.grade_text(text, problem)
        else:
            answer, score = None, Score(correct=False, score=0.0)
        breakdown = Ledger()
        for call in episode.calls:
            breakdown.add(call)
        usage = episode.usage
        record = ResultRecord(
            id=problem.id,
            prediction=answer,
            prediction_text=text,
            gold=problem.gold,
            correct=score.correct,
            score=score.score,
            metrics=score.metrics,
            tokens=usage.total_tokens,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            calls=len(episode.calls),
            cached_calls=sum(c.cached for c in episode.calls),
            retries=sum(c.retries for c in episode.calls),
            # each call priced by its own backend's model (heterogeneous executors differ); None if one has no price
            cost=breakdown.known_cost if run.engine.prices else None,
            by_role=breakdown.by_role,
            by_agent=breakdown.by_agent,
            by_model=breakdown.by_model,
            error=error,
            details=episode.details,
        )
        rundir.append(results_name, record)
        rundir.append(RunDirectory.EVENTS, {"type": "episode", "phase": phase, "index": index, "id": problem.id,
                                            "tokens": usage.total_tokens, "calls": len(episode.calls),
                                            "correct": score.correct, "error": error})
        pm.notify("on_episode_end", phase=phase, index=index, record=record.model_dump(mode="json"))
        progress.finished(score.correct, usage.total_tokens)

    await run_all((one(i, p) for i, p in todo), concurrency)
