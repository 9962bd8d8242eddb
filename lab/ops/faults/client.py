"""A client of the Toxiproxy API (the fault proxy's or a real Toxiproxy's), for `lab fault` and
the drills, with the service-level verbs `lab` adds: *disable* a service (refused at once, a fast
failure), *blackhole* it (silence in both directions: clients hang until their own deadline),
*heal* it (both undone), and `reset` (everything).

What a server answers is data to check, not to trust: the proxies' addresses are read back as
host:port (`fields.read_back`) before anyone builds a URL or a shell line of them, and every name
put in a path is quoted as one path segment."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from lab.config import Settings
from lab.ops.faults import fields

BLACKHOLE = ("blackhole_up", "blackhole_down")


def _segment(name: str) -> str:
    return quote(str(name), safe="")


class FaultApiError(RuntimeError):
    """The fault API refused a call or did not answer; the message says which and why."""


class FaultClient:
    def __init__(self, url: str, timeout_s: float = 5.0, token: str = ""):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s, headers=headers)

    @classmethod
    def of(cls, settings: Settings, timeout_s: float = 5.0) -> FaultClient:
        """The client of this lab's fault API (LAB_FAULTS_URL), with its token (LAB_API_TOKEN)."""
        return cls(settings.faults_url, timeout_s, settings.api_token)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise FaultApiError(
                f"the fault proxy did not answer at {self.url} ({exc.__class__.__name__}); "
                "is it running? lab stack up --with faults"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except (ValueError, AttributeError):
                message = response.text
            raise FaultApiError(f"{method} {path} → {response.status_code}: {str(message)[:300]}")
        try:
            return response.json() if response.content else None
        except ValueError:
            raise FaultApiError(f"{method} {path}: the answer is not JSON") from None

    def version(self) -> str:
        answer = self._call("GET", "/version")
        return str(answer.get("version") if isinstance(answer, dict) else answer)

    def proxies(self) -> dict[str, dict[str, Any]]:
        """name → proxy, each name and address checked (a FaultApiError names the first that
        is not what a proxy's must be)."""
        try:
            return fields.read_back(self._call("GET", "/proxies"))
        except ValueError as exc:
            raise FaultApiError(f"the fault proxy at {self.url} answered {exc}") from None

    def populate(self, proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self._call("POST", "/populate", proxies)
        made = answer.get("proxies") if isinstance(answer, dict) else None
        try:
            fields.read_back({p.get("name"): p for p in made or []})
        except (ValueError, AttributeError, TypeError) as exc:
            raise FaultApiError(f"the fault proxy at {self.url} answered {exc}") from None
        return made  # type: ignore[return-value]

    def proxy(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/proxies/{_segment(name)}")

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        return self._call("POST", f"/proxies/{_segment(name)}", {"enabled": enabled})

    def toxics(self, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/proxies/{_segment(name)}/toxics")

    def add_toxic(
        self,
        proxy: str,
        kind: str,
        attributes: dict[str, int] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> dict[str, Any]:
        body = {"type": kind, "stream": stream, "toxicity": toxicity,
                "attributes": attributes or {}, **({"name": name} if name else {})}  # fmt: skip
        return self._call("POST", f"/proxies/{_segment(proxy)}/toxics", body)

    def update_toxic(self, proxy: str, name: str, attributes: dict[str, int]) -> dict[str, Any]:
        path = f"/proxies/{_segment(proxy)}/toxics/{_segment(name)}"
        return self._call("POST", path, {"attributes": attributes})

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{_segment(proxy)}/toxics/{_segment(name)}")

    def disable(self, proxy: str) -> None:
        """Refuse and cut its connections: the service fails fast."""
        self.set_enabled(proxy, False)

    def blackhole(self, proxy: str) -> None:
        """Accept, take bytes, never answer, both ways: the service goes silent."""
        for name, stream in zip(BLACKHOLE, ("upstream", "downstream"), strict=True):
            self.add_toxic(proxy, "timeout", {"timeout": 0}, stream, name=name)

    def heal(self, proxy: str) -> None:
        """Undo `disable`, `blackhole` and every toxic of this proxy."""
        for toxic in self.toxics(proxy) or []:
            if isinstance(toxic, dict) and isinstance(toxic.get("name"), str):
                self.remove_toxic(proxy, toxic["name"])
        self.set_enabled(proxy, True)

    def reset(self) -> None:
        self._call("POST", "/reset")

    def close(self) -> None:
        self.http.close()
