"""Reading an existing run back: the config its manifest recorded, for `econash resume`, `econash
eval --checkpoint` and `econash score`.

A manifest never holds secrets, so they are read from the environment again here; a damaged or
newer manifest is one sentence, because an empty config would otherwise resume with the defaults
(another backend and model than the run's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from econash.config import absolute_path, validation_message
from econash.config_types import RunConfig
from econash.errors import ConfigError
from econash.loop import Checkpointer
from econash.plugins import make_plugin_manager
from econash.redaction import drop_secrets, restore_secrets
from econash.registry import Registries
from econash.run_records import SCHEMA_VERSION
from econash.rundir import RunDirectory


def checkpoint_config(checkpoint: Path, flags: dict[str, Any], registries: Registries | None = None) -> RunConfig:
    """The config for evaluating a checkpoint: its run's config (secrets from the environment again),
    changed by the given flags."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ConfigError(f"Checkpoint '{checkpoint}' does not exist; give a file from RUN_DIR/checkpoints/.")
    run_dir = checkpoint.resolve().parent.parent
    registries = registries or Registries.from_plugin_manager(make_plugin_manager())
    base = read_run_config(run_dir, registries=registries, action="evaluate its checkpoint")
    if flags.get("method") and flags["method"] != base.method:
        raise ConfigError(f"Checkpoint '{checkpoint}' was trained by method '{base.method}', not "
                          f"'{flags['method']}'; leave --method out.")
    executors, topology = flags.get("executors") or base.executors, flags.get("topology") or base.topology
    if (executors, topology) != (base.executors, base.topology):  # its networks are shaped for its team
        raise ConfigError(f"Checkpoint '{checkpoint.name}' has {base.executors} executors and the {base.topology} "
                          f"topology (its run's manifest.json), not {executors} executors and the {topology} "
                          "topology; leave --executors and --topology out, or train a run with that team.")
    Checkpointer.load(checkpoint)  # a damaged file is one sentence before a run directory is made
    data = base.model_dump(mode="json")
    data.update({k: v for k, v in flags.items() if v is not None})
    data.update({"checkpoint": str(absolute_path(checkpoint)), "run_dir": flags.get("run_dir"),
                 "eval_untrained": False, "evaluate": True})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None


def read_manifest_config(run_dir: Path) -> dict[str, Any]:
    """The ``config`` of a run's manifest.json. A damaged or newer manifest is one sentence: an empty
    config would otherwise resume with the defaults, another backend and model than the run's."""
    manifest_path = Path(run_dir) / RunDirectory.MANIFEST
    if not manifest_path.exists():
        raise ConfigError(f"'{run_dir}' is not an econash run directory (it has no manifest.json, as a run that "
                          "failed before it started); start the run again with `econash run`.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"'{manifest_path}' is not valid JSON; the run directory is damaged.") from None
    except OSError as exc:
        raise ConfigError(f"'{manifest_path}' cannot be read ({exc.strerror}); check its permissions.") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise ConfigError(f"'{manifest_path}' holds no run config; the run directory is damaged, so start the "
                          "run again with `econash run`.")
    version = manifest.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ConfigError(f"'{manifest_path}' has schema version {version}, newer than this econash reads "
                          f"({SCHEMA_VERSION}); upgrade econash to continue the run.")
    return manifest["config"]


def read_run_config(run_dir: Path, updates: dict[str, Any] | None = None, *, registries: Registries | None = None,
                    action: str = "resume it") -> RunConfig:
    """The resolved config of an existing run. Its secrets were never stored: with ``registries`` they
    are read from the environment again (a missing one is a ConfigError ending "set VAR to
    ``action``"), without them they are left out, which is enough to read the run's settings."""
    recorded = read_manifest_config(run_dir)
    data = (restore_secrets(recorded, registries, run_dir=run_dir, action=action) if registries is not None
            else drop_secrets(recorded))
    data.update({k: v for k, v in (updates or {}).items() if v is not None})
    data["run_dir"] = str(absolute_path(run_dir))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None
