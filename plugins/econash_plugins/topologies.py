"""The coordinator topologies: who coordinates which executors.

- `single`: one coordinator over all N executors (the paper's setting).
- `multi`: executors split into K clusters, each with a local coordinator that writes the cluster's
  strategy and commitment, and a global coordinator that commits from the clusters' commitments.
  The econash learner mixes hierarchically: a mixer per cluster, then a global one.
- `hetero`: one coordinator (on the run's backend) over executors that each run on a backend and
  model of their own, for example a local model next to an OpenAI-compatible server:

      -B 'topology_options.executors=[{backend: local}, {backend: openai, base_url: "http://127.0.0.1:8000/v1", model: m}]'

  Executor i uses entry i modulo the list's length, so two entries and --executors 4 alternate.
  Each executor's action grid is clipped to its own backend's capabilities, and its identity
  embedding includes its model.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import Field, ValidationError

from econash.config import validation_message
from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash.topology import Topology
from econash.types import ClusterLayout, ExecutorBackend, StrictModel


class TolerantOptions(StrictModel):
    """The option every topology takes."""

    max_failed_executors: int = Field(0, ge=0, description=(
        "Executors per round whose calls may still fail after the engine's retries: they are shown to the "
        "coordinator as failed and get reward 0; one more, or any fatal error, fails the episode."))


class SingleCoordinator(Topology):
    """One coordinator directs all N executors and commits to the answer."""

    name = "single"

    class Options(TolerantOptions):
        pass

    def __init__(self, options: Options) -> None:
        self.max_failed_executors = options.max_failed_executors

    def layout(self, n_executors: int) -> ClusterLayout:
        return ClusterLayout(clusters=[list(range(n_executors))])


class MultiCoordinator(Topology):
    """K local coordinators over contiguous, near-equal clusters, and one global coordinator."""

    name = "multi"

    class Options(TolerantOptions):
        clusters: int = Field(2, ge=1, description=(
            "Clusters of executors, each with a local coordinator; fewer executors than clusters give one "
            "executor per cluster."))

    def __init__(self, options: Options) -> None:
        self.clusters = options.clusters
        self.max_failed_executors = options.max_failed_executors

    def layout(self, n_executors: int) -> ClusterLayout:
        k = min(self.clusters, n_executors)  # a sweep down to one executor keeps working
        size, extra = divmod(n_executors, k)
        groups, start = [], 0
        for c in range(k):
            end = start + size + (1 if c < extra else 0)  # the first clusters take the remainder
            groups.append(list(range(start, end)))
            start = end
        return ClusterLayout(clusters=groups, hierarchical=True)


class HeterogeneousExecutors(Topology):
    """One coordinator; executors on the backends listed in ``executors``."""

    name = "hetero"

    class Options(TolerantOptions):
        executors: list[dict[str, Any]] | None = Field(None, description=(
            "The executors' backends, each {backend, model, base_url, options}; unset fields follow the run's, "
            "and executor i uses entry i modulo the list's length."))

    def __init__(self, options: Options) -> None:
        if not options.executors:
            raise ConfigError("The hetero topology needs executor backends: pass "
                              "-B 'topology_options.executors=[{backend: local}, {backend: openai, model: M}]'.")
        try:
            self.specs = [ExecutorBackend.model_validate(spec) for spec in options.executors]
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, ExecutorBackend, prefix="hetero executor ")) from None
        self.max_failed_executors = options.max_failed_executors

    def layout(self, n_executors: int) -> ClusterLayout:
        return ClusterLayout(clusters=[list(range(n_executors))],
                             executors=[self.specs[i % len(self.specs)] for i in range(n_executors)])


@hookimpl
def register_topologies(register: Callable[..., None]) -> None:
    register("single", SingleCoordinator)
    register("multi", MultiCoordinator)
    register("hetero", HeterogeneousExecutors)
