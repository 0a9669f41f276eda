"""The interface of coordinator topologies: how executors are grouped under coordinators, and
which backend each executor runs on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from econash.types import ClusterLayout


class Topology(ABC):
    """Groups N executors into clusters, each with a coordinator.

    A layout with one cluster is the paper's setting; several clusters with ``hierarchical`` add a
    global coordinator over the clusters' commitments (and hierarchical mixing in the learner);
    ``executors`` in the layout put executors on backends of their own.
    """

    name: ClassVar[str] = "topology"
    #: how many executors of one round may fail (their calls' retries exhausted) before the episode
    #: fails; a failed executor's answer is left out of the commitment and its reward is 0
    max_failed_executors: int = 0

    @abstractmethod
    def layout(self, n_executors: int) -> ClusterLayout:
        """The clusters for a team of ``n_executors``; raise ConfigError when the team cannot be split."""
