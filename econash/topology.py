"""The interface of coordinator topologies: how executors are grouped under coordinators."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from econash.types import ClusterLayout


class Topology(ABC):
    """Groups N executors into clusters, each with a coordinator."""

    name: ClassVar[str] = "topology"
    #: how many executors of one episode may fail before the episode fails
    max_failed_executors: int = 0

    @abstractmethod
    def layout(self, n_executors: int) -> ClusterLayout:
        """The clusters for a team of ``n_executors``."""
