"""The `multi` topology: executors split into K clusters, each with a local coordinator that writes
the cluster's strategy and commitment, and a global coordinator that commits from the clusters'
commitments. The econash learner mixes hierarchically: a mixer per cluster, then a global one."""

from __future__ import annotations

from typing import Callable

from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash.topology import Topology
from econash.types import ClusterLayout


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


@hookimpl
def register_topologies(register: Callable[..., None]) -> None:
    register("multi", MultiCoordinator)
