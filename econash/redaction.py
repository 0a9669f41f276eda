"""Which config values are secrets, how they are kept out of files, and how they come back on resume.

Secrets are named by an explicit list, never guessed from patterns: a pattern such as "token" also
hid ``generation.max_tokens``, and ``econash resume`` then silently ran with the default cap. A
secret is a key in ``SECRET_NAMES`` (API keys, authorisation headers and tokens) or a field that a
plugin's ``Options`` model declares secret with :func:`secret_field` (or a ``SecretStr`` type),
wherever it appears in the config. ``manifest.json`` and ``econash config`` show ``<redacted>`` in
its place; ``econash resume`` and ``econash eval --checkpoint`` read it from the environment again.

Server URLs (``URL_KEYS``) are half secret: the server must stay readable, but a user name,
password or query written into the URL (``http://user:password@host/v1``, ``?key=...``) is a
credential, so only those parts are replaced, and resume reads the whole URL again from the key's
ECONASH_ variable (``ECONASH_BASE_URL``), refusing one that names other servers.
"""

from __future__ import annotations

import os
import typing
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretBytes, SecretStr

from econash.errors import ConfigError

if TYPE_CHECKING:
    from econash.registry import Registries

REDACTED = "<redacted>"

#: config keys that hold a secret wherever they appear, compared lower-cased with '-' read as '_'
SECRET_NAMES = frozenset({
    "api_key", "apikey", "x_api_key", "api_token", "auth_token", "access_token", "bearer_token",
    "refresh_token", "session_token", "authorization", "proxy_authorization", "password", "client_secret",
    "secret_key", "private_key",
})

#: config keys that hold a server URL, or a list of them (replicas): credentials in them are redacted
URL_KEYS = frozenset({"base_url"})

#: the options maps of a RunConfig, and the config key naming the plugin that reads each
OPTION_OWNERS = {"backend_options": ("backends", "backend"), "task_options": ("tasks", "task"),
                 "method_options": ("methods", "method"), "topology_options": ("topologies", "topology")}


def secret_field(default: Any = None, *, env: str | None = None, **kwargs: Any) -> Any:
    """A field of a plugin's ``Options`` model that holds a secret: it is redacted in manifests and in
    ``econash config``, and on resume it is read from the environment variable ``env``.

        class Options(StrictModel):
            api_key: str | None = secret_field(env="MY_SERVICE_API_KEY")
    """
    extra: dict[str, Any] = {"secret": True}
    if env:
        extra["env"] = env
    return Field(default, json_schema_extra=extra, **kwargs)


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_")


def _is_secret_type(annotation: Any) -> bool:
    return annotation in (SecretStr, SecretBytes) or any(_is_secret_type(a) for a in typing.get_args(annotation))


def declared_secrets(model: type[BaseModel] | None) -> dict[str, str | None]:
    """The fields an Options model declares secret, each with its environment variable (or None)."""
    if model is None:
        return {}
    declared: dict[str, str | None] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("secret") or _is_secret_type(field.annotation):
            env = extra.get("env")
            declared[name] = env if isinstance(env, str) else None
    return declared


def secret_names(registries: Registries | None = None) -> frozenset[str]:
    """``SECRET_NAMES`` and every field name an installed plugin's Options model declares secret."""
    from econash.registry import KIND_SINGULAR

    names = set(SECRET_NAMES)
    if registries is not None:
        for kind in KIND_SINGULAR:
            for entry in registries.kind(kind).entries.values():
                names.update(_normalise(name) for name in declared_secrets(entry.options_model()))
    return frozenset(names)


def is_secret_key(key: str, names: frozenset[str] = SECRET_NAMES) -> bool:
    return _normalise(str(key)) in names


def redact_url(url: str) -> str:
    """``url`` with its user name and password, query and fragment (where credentials are written)
    each replaced by ``<redacted>``; the scheme, host, port and path stay."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: nothing of it is shown
        return REDACTED
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, REDACTED if parts.query else "",
                       REDACTED if parts.fragment else ""))


def _each_url(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [change(item) if isinstance(item, str) else item for item in value]
    return value


def _is_url_key(key: Any) -> bool:
    return _normalise(str(key)) in URL_KEYS


def _holds_redacted(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and REDACTED in item for item in items)


def _without_credentials(url: str) -> str:
    return url.replace(f"{REDACTED}@", "").replace(f"#{REDACTED}", "").replace(f"?{REDACTED}", "")


def redact(value: Any, names: frozenset[str] = SECRET_NAMES) -> Any:
    """A copy of a config dict with every secret's value replaced by ``<redacted>``, and the credentials
    in every server URL, for manifests and output."""
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k, names) and v not in (None, "")
                else _each_url(v, redact_url) if _is_url_key(k) else redact(v, names)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, names) for v in value]
    return value


# ---------------------------------------------------------------- back from the environment


def drop_secrets(value: Any) -> Any:
    """A recorded config without its ``<redacted>`` values (in dicts and in lists) and its URLs without
    their redacted credentials: enough to read a run's settings, never to continue it (see
    :func:`restore_secrets`)."""
    if isinstance(value, Mapping):
        return {k: _each_url(v, _without_credentials) if _is_url_key(k) else drop_secrets(v)
                for k, v in value.items() if v != REDACTED}
    if isinstance(value, list):
        return [drop_secrets(v) for v in value if v != REDACTED]
    return value


def _path_env(path: list[str | int]) -> str | None:
    """The ECONASH_ variable of a dotted config key (the config's environment layer); None inside a list."""
    from econash.config import ENV_PREFIX

    if any(isinstance(part, int) for part in path):
        return None
    return ENV_PREFIX + "__".join(str(part).upper() for part in path)


def _shown(path: list[str | int]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else (f".{part}" if i else part) for i, part in enumerate(path))


def _options_model(registries: Registries, kind: str, name: Any) -> type[BaseModel] | None:
    entry = registries.kind(kind).entries.get(name) if isinstance(name, str) else None
    return entry.options_model() if entry is not None else None


def restore_secrets(config: dict[str, Any], registries: Registries, *, run_dir: Any, action: str) -> dict[str, Any]:
    """The config of a recorded run with every ``<redacted>`` secret read from the environment again.

    A secret comes from its ECONASH_ variable (``ECONASH_BACKEND_OPTIONS__API_KEY``), else from the
    variable its plugin declares (``OPENAI_API_KEY``). One with neither variable (inside a list, in a
    plugin that declares none) is left out, so the plugin runs as if it was not given. A variable
    that is not set is a ConfigError naming it: the run never continues with a changed secret.
    """
    names = secret_names(registries)

    def declared_env(path: list[str | int], spec: Any) -> str | None:
        """The variable the plugin reading this secret declares; ``spec`` holds the secret's dict."""
        model = None
        if len(path) == 2 and path[0] in OPTION_OWNERS:
            kind, name_key = OPTION_OWNERS[str(path[0])]
            model = _options_model(registries, kind, config.get(name_key))
        elif len(path) >= 2 and path[-2] == "options" and isinstance(spec, Mapping):
            # an executor's backend (econash.topology.ExecutorBackend: backend, model, base_url, options)
            model = _options_model(registries, "backends", spec.get("backend"))
        return declared_secrets(model).get(str(path[-1]))

    def missing(path: list[str | int], env: str) -> ConfigError:
        if is_secret_key(str(path[-1]), names):
            return ConfigError(f"Run '{run_dir}' was started with the secret {_shown(path)}, which is never stored; "
                               f"set {env} to {action}.")
        # older manifests hid every key containing "key" or "token", settings such as max_tokens included
        return ConfigError(f"Run '{run_dir}' was recorded by an older econash, which hid its {_shown(path)}; set {env} "
                           f"to the value it ran with to {action}.")

    def urls_again(path: list[str | int], recorded: Any) -> Any:
        """The URLs with credentials that ``recorded`` redacts, from the key's ECONASH_ variable (list
        indices included: ECONASH_TOPOLOGY_OPTIONS__EXECUTORS__0__BASE_URL)."""
        from econash.config import ENV_PREFIX

        env = ENV_PREFIX + "__".join(str(part).upper() for part in path)
        several = isinstance(recorded, list)
        recorded_urls = recorded if several else [recorded]
        urls = [url.strip() for url in os.environ.get(env, "").split(",") if url.strip()]
        if not urls:
            raise ConfigError(f"Run '{run_dir}' was started with credentials in its {_shown(path)}, which are never "
                              f"stored; set {env} to the URL{'s' if several else ''} it ran with to {action}.")
        if [redact_url(url) for url in urls] != recorded_urls:
            servers = ", ".join(_each_url(recorded_urls, _without_credentials))
            raise ConfigError(f"{env} names other servers than run '{run_dir}' used ({servers}); set it to the "
                              f"URL{'s' if several else ''} the run ran with to {action}.")
        return urls if several else urls[0]

    def walk(value: Any, path: list[str | int], parent: Any) -> Any:
        if isinstance(value, Mapping):
            restored: dict[str, Any] = {}
            for key, item in value.items():
                here = [*path, key]
                if _is_url_key(key) and _holds_redacted(item):
                    restored[key] = urls_again(here, item)
                    continue
                if item != REDACTED:
                    restored[key] = walk(item, here, value)
                    continue
                candidates = [env for env in (_path_env(here), declared_env(here, parent)) if env]
                found = next((os.environ[env] for env in candidates if os.environ.get(env)), None)
                if found is not None:
                    restored[key] = found
                elif candidates:
                    raise missing(here, candidates[-1])
            return restored
        if isinstance(value, list):
            return [walk(item, [*path, i], value) for i, item in enumerate(value) if item != REDACTED]
        return value

    return walk(config, [], None)
