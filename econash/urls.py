"""Server URLs, checked when the config is read: a typo in --base-url fails before the run instead of
after every retry of its first call ("could not connect to notaurl")."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator


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
        raise ValueError("must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1")
    return url


#: a config field holding a server URL (None: the backend's default)
BaseUrl = Annotated[str | None, AfterValidator(check_base_url)]
