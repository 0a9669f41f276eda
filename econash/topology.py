"""The interface of coordinator topologies: how executors are grouped under coordinators, and
which backend each executor runs on. The layout a topology returns is defined here beside it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import Field, model_validator

from econash.strict_model import StrictModel
from econash.urls import BaseUrls


class ExecutorBackend(StrictModel):
    """The backend and model one executor runs on (heterogeneous teams); unset fields follow the run's."""

    backend: str
    model: str | None = None
    base_url: BaseUrls = None
    options: dict[str, Any] = Field(default_factory=dict)


class ClusterLayout(StrictModel):
    """How a topology groups executors: one list of executor indices per local coordinator. With
    ``hierarchical`` a global coordinator commits from the clusters' commitments. ``executors``
    gives each executor its own backend (empty: every role uses the run's backend)."""

    clusters: list[list[int]]
    hierarchical: bool = False
    executors: list[ExecutorBackend] = Field(default_factory=list)
    #: executors of one round whose calls may fail (retries exhausted) before the episode fails;
    #: the runner copies it from the topology's ``max_failed_executors``
    max_failed_executors: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _partition(self) -> ClusterLayout:
        members = sorted(i for cluster in self.clusters for i in cluster)
        if not self.clusters or any(not c for c in self.clusters) or members != list(range(len(members))):
            raise ValueError(f"clusters {self.clusters} must split executors 0..N-1 into non-empty groups")
        if self.executors and len(self.executors) != len(members):
            raise ValueError(f"{len(self.executors)} executor backends for {len(members)} executors")
        return self


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
