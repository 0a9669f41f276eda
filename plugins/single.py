"""The `single` topology: one coordinator over all N executors (the paper's setting)."""

from __future__ import annotations

from typing import Callable

from econash.hookspecs import hookimpl
from econash.topology import Topology
from econash.types import ClusterLayout


class SingleCoordinator(Topology):
    """One coordinator directs all N executors and commits to the answer."""

    name = "single"

    def __init__(self, max_failed_executors: int = 0) -> None:
        self.max_failed_executors = max_failed_executors

    def layout(self, n_executors: int) -> ClusterLayout:
        return ClusterLayout(clusters=[list(range(n_executors))])


@hookimpl
def register_topologies(register: Callable[..., None]) -> None:
    register("single", SingleCoordinator)
