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

from pydantic import ValidationError

from econash.config import validation_message
from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash.topology import Topology
from econash.types import ClusterLayout, ExecutorBackend


class SingleCoordinator(Topology):
    """One coordinator directs all N executors and commits to the answer."""

    name = "single"

    def __init__(self, max_failed_executors: int = 0) -> None:
        self.max_failed_executors = max_failed_executors

    def layout(self, n_executors: int) -> ClusterLayout:
        return ClusterLayout(clusters=[list(range(n_executors))])


class MultiCoordinator(Topology):
    """K local coordinators over contiguous, near-equal clusters, and one global coordinator."""

    name = "multi"

    def __init__(self, clusters: int = 2, max_failed_executors: int = 0) -> None:
        if clusters < 1:
            raise ConfigError("topology option clusters must be at least 1.")
        self.clusters = clusters
        self.max_failed_executors = max_failed_executors

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

    def __init__(self, executors: list[dict[str, Any]] | None = None, max_failed_executors: int = 0) -> None:
        if not executors:
            raise ConfigError("The hetero topology needs executor backends: pass "
                              "-B 'topology_options.executors=[{backend: local}, {backend: openai, model: M}]'.")
        try:
            self.specs = [ExecutorBackend.model_validate(spec) for spec in executors]
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, ExecutorBackend, prefix="hetero executor ")) from None
        self.max_failed_executors = max_failed_executors

    def layout(self, n_executors: int) -> ClusterLayout:
        return ClusterLayout(clusters=[list(range(n_executors))],
                             executors=[self.specs[i % len(self.specs)] for i in range(n_executors)])


@hookimpl
def register_topologies(register: Callable[..., None]) -> None:
    register("single", SingleCoordinator)
    register("multi", MultiCoordinator)
    register("hetero", HeterogeneousExecutors)
