"""Build a RunConfig from layers: defaults < --config YAML < ECONASH_* environment < flags < -B key=value.

Every layer is checked against the RunConfig schema, and an unknown key or a bad value becomes
one sentence that names the key and, for a typo, the closest valid one.
"""

from __future__ import annotations

import difflib
import logging
import os
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from econash.config_types import RunConfig
from econash.errors import ConfigError
from econash.redaction import OPTION_OWNERS
from econash.redaction import is_secret_key, redact  # noqa: F401 - long imported from here

if TYPE_CHECKING:
    from econash.registry import Registries

ENV_PREFIX = "ECONASH_"

#: The ECONASH_* variables that are not config keys, and what reads each: the one list env_layer
#: checks before it warns about a variable that matches nothing (a test holds the sources to it).
OTHER_ENV_VARIABLES = {
    "ECONASH_CACHE_DIR": "econash.paths.cache_dir: the response cache and plugins' caches",
    "ECONASH_DATA_DIR": "econash.data and the tasks: where benchmark data is looked for",
    "ECONASH_LOAD_PLUGINS": "econash.plugins: load only these plugins",
    "ECONASH_STRICT_PLUGINS": "econash.plugins: a plugin that fails to load is an error",
    "ECONASH_TRACE_PLUGINS": "econash.plugins: print every hook call",
    "ECONASH_DEBUG": "econash.cli: show the traceback of an internal error",
}

logger = logging.getLogger(__name__)


def _submodel(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = model.model_fields.get(name)
    if field is None:
        return None
    annotation = field.annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_open_mapping(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    return field is not None and typing.get_origin(field.annotation) is dict


def config_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every settable key of a model, nested ones dotted (generation.temperature)."""
    keys = []
    for name in model.model_fields:
        sub = _submodel(model, name)
        if sub is not None:
            keys.extend(config_keys(sub, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def suggest_key(key: str, model: type[BaseModel] = RunConfig) -> str | None:
    """The valid key closest to a misspelled one, matching on the full path or its last part."""
    keys = config_keys(model)
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if close:
        return close[0]
    leaf = key.rsplit(".", 1)[-1]
    by_leaf = {k.rsplit(".", 1)[-1]: k for k in keys}
    close = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.6)
    return by_leaf[close[0]] if close else None


def _model_at(model: type[BaseModel], loc: Iterable[Any]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str):
            return None
        current = _submodel(current, part)
    return current


def validation_message(exc: ValidationError, model: type[BaseModel] = RunConfig, prefix: str = "config key ") -> str:
    """One sentence for the first problem pydantic found."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1]) or model
        suggestion = suggest_key(key, model) if parent is model or len(loc) > 1 else None
        if suggestion is None:
            close = difflib.get_close_matches(loc[-1], list(parent.model_fields), n=1)
            suggestion = ".".join(loc[:-1] + close[:1]) if close else None
        hint = f"did you mean '{suggestion}'?" if suggestion else f"valid keys are: {', '.join(parent.model_fields)}."
        return f"Unknown {prefix}'{key}'; {hint}"
    got = error.get("input")
    shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    # A validator's own ValueError reads "Value error, must be ..."; the sentence needs only its words.
    message = error["msg"].removeprefix("Value error, ")
    return f"Invalid value for {prefix}'{key}': {message}{shown}."


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one -B key=value; the value is read as YAML so numbers, booleans and lists work."""
    if "=" not in text:
        raise ConfigError(f"Override '{text}' is not of the form key=value; write it as -B key=value.")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Override '{text}' has no key; write it as -B key=value.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def check_key(key: str, model: type[BaseModel] = RunConfig) -> None:
    """Reject a dotted key that is not in the schema (keys under *_options maps are free)."""
    current: type[BaseModel] = model
    parts = key.split(".")
    for i, part in enumerate(parts):
        if part not in current.model_fields:
            suggestion = suggest_key(key, model)
            hint = f"did you mean '{suggestion}'?" if suggestion else "run `econash config --keys` to list valid keys."
            raise ConfigError(f"Unknown config key '{key}'; {hint}")
        if _is_open_mapping(current, part):
            return
        sub = _submodel(current, part)
        if sub is None:
            if i != len(parts) - 1:
                raise ConfigError(f"Config key '{'.'.join(parts[: i + 1])}' has no sub-keys; set it as a whole.")
            return
        current = sub


def set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[parts[-1]] = value


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist; check the path given to --config.") from None
    except OSError as exc:
        raise ConfigError(f"Config file '{path}' cannot be read ({exc.strerror}); check its permissions.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config file '{path}' is not a text file; --config takes a YAML file of config keys.") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"Config file '{path}' is not valid YAML{where}; fix its syntax.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping of keys to values at its top level.")
    return data


def env_name(key: str) -> str:
    """The environment variable of a config key: ``generation.temperature`` -> ECONASH_GENERATION__TEMPERATURE."""
    return ENV_PREFIX + key.upper().replace(".", "__")


def env_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """ECONASH_SEED=3, ECONASH_GENERATION__TEMPERATURE=0.2. A name that is no config key and not in
    OTHER_ENV_VARIABLES is ignored with a warning naming the closest key's variable."""
    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in OTHER_ENV_VARIABLES:
            continue
        key = name[len(ENV_PREFIX):].lower().replace("__", ".")
        if key.split(".")[0] not in RunConfig.model_fields:
            suggestion = suggest_key(key)
            hint = (f"did you mean {env_name(suggestion)}?" if suggestion else
                    "`econash config --keys` lists the keys (ECONASH_ and the key in capitals, __ for a dot).")
            logger.warning("%s matches no config key and is ignored; %s", name, hint)
            continue
        check_key(key)
        set_dotted(layer, key, parse_override(f"{key}={raw}")[1])
    return layer


def load_config(
    *,
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Resolve a RunConfig from its layers. flags with value None are left out."""
    data: dict[str, Any] = dict(base or {})
    if config_file is not None:
        data = deep_merge(data, read_config_file(config_file))
    data = deep_merge(data, env_layer(environ))
    data = deep_merge(data, {k: v for k, v in (flags or {}).items() if v is not None})
    for text in overrides:
        key, value = parse_override(text)
        check_key(key)
        set_dotted(data, key, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None


def with_backend_from_model(config: RunConfig, backend_names: Callable[[], Iterable[str]]) -> RunConfig:
    """``model: openai/gpt-4o-mini`` read as backend ``openai`` and model ``gpt-4o-mini`` when no layer
    chose a backend and the part before the first slash is a registered backend (``backend_names``,
    asked only then). Model ids hold slashes of their own (Together's ``meta-llama/...``; a backend
    chosen by hand serving ``openai/gpt-oss-20b``), so they are split only then, and never when the
    model names an existing file (a GGUF under a folder named like a backend)."""
    model = config.model
    if "backend" in config.model_fields_set or not model or "/" not in model:
        return config
    backend, _, name = model.partition("/")
    if not name or Path(model).expanduser().exists() or backend not in set(backend_names()):
        return config
    return config.model_copy(update={"backend": backend, "model": name})


def with_team_size(config: RunConfig, registries: Registries) -> RunConfig:
    """The config with the method's team size (its class's ``executors_option``: sc's ``k``, mad's
    ``agents``, moa's ``proposers``) set to ``executors`` when a layer set ``executors`` and none set
    the option. Applied once, where the config is resolved from its layers, so the manifest records
    the size and a resumed run keeps it."""
    option = getattr(registries.methods.get(config.method).factory, "executors_option", None)
    if not option or "executors" not in config.model_fields_set or option in config.method_options:
        return config
    return config.model_copy(update={"method_options": {**config.method_options, option: config.executors}})


def executors_unused(config: RunConfig, registries: Registries) -> bool:
    """Whether a layer set ``executors`` for a method that has no team (cot: one call per question)."""
    factory = registries.methods.get(config.method).factory
    return ("executors" in config.model_fields_set and not getattr(factory, "executors_option", None)
            and not getattr(factory, "reads_executors", False))


def absolute_path(path: str | Path) -> Path:
    """``path`` made absolute against the working directory (``~`` expanded, symlinks kept)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def _absolute_fields(model: BaseModel) -> BaseModel:
    """A model with its Path fields, and its sub-models', absolute."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            update[name] = _absolute_fields(value)
        elif isinstance(value, Path):
            update[name] = absolute_path(value)
    return model.model_copy(update=update)


def _absolute_options(options: dict[str, Any], model: type[BaseModel] | None) -> dict[str, Any]:
    """A plugin's options with the values of its Options model's Path fields absolute."""
    def is_path(key: str) -> bool:
        field = model.model_fields.get(key) if model is not None else None
        return field is not None and (field.annotation is Path or Path in typing.get_args(field.annotation))

    return {key: str(absolute_path(value)) if isinstance(value, (str, Path)) and is_path(key) else value
            for key, value in options.items()}


def _model_is_file(registries: Registries, backend: Any) -> bool:
    entry = registries.backends.entries.get(backend) if isinstance(backend, str) else None
    return entry is not None and bool(getattr(entry.factory, "model_is_file", False))


def _absolute_executor_models(value: Any, registries: Registries) -> Any:
    """Executors' backends (econash.topology.ExecutorBackend) in topology options, their model files absolute."""
    if isinstance(value, list):
        return [_absolute_executor_models(item, registries) for item in value]
    if not isinstance(value, dict):
        return value
    fixed = {key: _absolute_executor_models(item, registries) for key, item in value.items()}
    if isinstance(value.get("model"), str) and _model_is_file(registries, value.get("backend")):
        fixed["model"] = str(absolute_path(value["model"]))
    return fixed


def with_absolute_paths(config: RunConfig, registries: Registries | None = None) -> RunConfig:
    """The config with every path in it absolute, so that ``econash resume`` and ``econash eval
    --checkpoint`` find the data, prices, cache and checkpoint from any working directory.

    Paths are RunConfig's Path fields (``cache.path`` included) and, given the registries, the Path
    fields of the run's plugins' Options models (``task_options.database``) and the model of a
    backend whose model is a file (``--model`` of the local backend, or of a hetero executor's).
    """
    config = typing.cast(RunConfig, _absolute_fields(config))
    if registries is None:
        return config
    update: dict[str, Any] = {}
    for key, (kind, name_key) in OPTION_OWNERS.items():
        entry = registries.kind(kind).entries.get(getattr(config, name_key))
        update[key] = _absolute_options(getattr(config, key), entry.options_model() if entry is not None else None)
    update["topology_options"] = _absolute_executor_models(update["topology_options"], registries)
    if config.model and _model_is_file(registries, config.backend):
        update["model"] = str(absolute_path(config.model))
    return config.model_copy(update=update)
