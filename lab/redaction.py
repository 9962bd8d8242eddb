"""What lab prints never shows a secret: a URL's password and secret query parameters, and
every token, password or secret setting, masked wherever a URL or the settings are printed (a
log, an error, a report's provenance, `lab stack env`).

A URL that cannot be read is masked whole past its scheme: printing it could leak what it holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

# Query parameters that carry a secret in the URL forms the clients accept.
SECRET_PARAMS = frozenset({"password", "pass", "pwd", "token", "secret", "key", "auth",
                           "access_token", "api_key", "apikey"})  # fmt: skip
SECRET_SETTING = re.compile(r"TOKEN|PASSWORD|SECRET")  # in a LAB_* name
MASK = "***"


def safe_url(url: str) -> str:
    """A URL (or comma-separated URLs) fit to print: every password masked, in each form a
    client accepts (`user:pw@`, `:pw@`, `?password=`, `?token=`, ...). A URL that cannot be
    read is masked whole past its scheme: printing it could leak what it holds."""
    return ",".join(_safe_one(part) for part in url.split(","))


def _safe_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{userinfo}@{host}"
        query = "&".join(_safe_param(p) for p in parts.query.split("&") if p)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://{MASK}" if scheme else MASK


def _safe_param(param: str) -> str:
    name = param.split("=", 1)[0]
    return f"{name}={MASK}" if name.lower() in SECRET_PARAMS else param


def redacted_env(env: Mapping[str, str]) -> dict[str, str]:
    """`LAB_*` variables fit to print: URLs through `safe_url`, and every token, password or
    secret setting masked."""
    out = {}
    for key, value in env.items():
        value = safe_url(value) if "://" in value else value
        out[key] = MASK if SECRET_SETTING.search(key) and value else value
    return out
