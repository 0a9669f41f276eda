"""Server URLs, checked when the config is read: a typo in --base-url fails before the run instead of
after every retry of its first call ("could not connect to notaurl").

A base URL may also name several servers, replicas of one model (a comma-separated string or a
list): the engine spreads calls over them (docs/engine.md, "Replicas").
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator

EXAMPLE = "http://127.0.0.1:8000/v1"


def check_base_url(value: str | None) -> str | None:
    """``value`` stripped, when it is an http(s) URL with a host (and a numeric port, if any)."""
    if value is None:
        return None
    url = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, e.g. {EXAMPLE}")
    return url


def check_base_urls(value: str | list[str] | None) -> str | list[str] | None:
    """One URL as a string, several (a comma-separated string, or a list) as a list, each checked:
    replicas of one model. Empty items (a trailing comma) are dropped; a URL given twice is refused."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    named = [item for item in items if item.strip()] or [""]
    if len(named) == 1:
        return check_base_url(named[0])
    urls: list[str] = []
    for item in named:
        try:
            urls.append(item.strip())
            check_base_url(item)
        except ValueError:
            raise ValueError(f"each URL must be an http:// or https:// URL with a host ({item.strip()!r} is not), "
                             f"e.g. {EXAMPLE}") from None
    twice = next((url for i, url in enumerate(urls) if url in urls[:i]), None)
    if twice is not None:
        raise ValueError(f"names {twice} twice; give each replica once")
    return urls


def base_urls(value: str | list[str] | None) -> list[str]:
    """The servers a checked ``base_url`` names: none, one or several."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def shown_url(url: str) -> str:
    """``url`` as counts and messages show it: without user name, password, query or fragment, where
    a secret could hide."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


#: a config field holding a server URL (None: the backend's default)
BaseUrl = Annotated[str | None, AfterValidator(check_base_url)]

#: a config field holding one server URL, or several (replicas of one model) as a list
BaseUrls = Annotated[str | list[str] | None, AfterValidator(check_base_urls)]
