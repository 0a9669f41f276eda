"""The base of every pydantic model that crosses a boundary between the core, plugins and files.

It sits in a module of its own because each family of boundary models (econash.call_types,
econash.task_types, econash.config_types, econash.run_records) and many plugins' ``Options`` build on it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base for every boundary model: unknown fields are errors, so a misspelled key fails where it
    is written instead of being silently ignored."""

    model_config = ConfigDict(extra="forbid")
