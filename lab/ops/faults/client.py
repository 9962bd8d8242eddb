"""A client of the Toxiproxy API (the fault proxy's or a real Toxiproxy's), for `lab fault` and
the drills, with the service-level verbs `lab` adds: *disable* a service (refused at once, a fast
failure), *blackhole* it (silence in both directions: clients hang until their own deadline),
*heal* it (both undone), and `reset` (everything)."""

from __future__ import annotations

from typing import Any

import httpx

BLACKHOLE = ("blackhole_up", "blackhole_down")


class FaultApiError(RuntimeError):
    """The fault API refused a call or did not answer; the message says which and why."""


class FaultClient:
    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

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
            except ValueError:
                message = response.text
            raise FaultApiError(f"{method} {path} → {response.status_code}: {message}")
        return response.json() if response.content else None

    def version(self) -> str:
        answer = self._call("GET", "/version")
        return str(answer.get("version") if isinstance(answer, dict) else answer)

    def proxies(self) -> dict[str, dict[str, Any]]:
        return self._call("GET", "/proxies")

    def populate(self, proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/populate", proxies)["proxies"]

    def proxy(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        return self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def toxics(self, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/proxies/{name}/toxics")

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
        return self._call("POST", f"/proxies/{proxy}/toxics", body)

    def update_toxic(self, proxy: str, name: str, attributes: dict[str, int]) -> dict[str, Any]:
        return self._call("POST", f"/proxies/{proxy}/toxics/{name}", {"attributes": attributes})

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def disable(self, proxy: str) -> None:
        """Refuse and cut its connections: the service fails fast."""
        self.set_enabled(proxy, False)

    def blackhole(self, proxy: str) -> None:
        """Accept, take bytes, never answer, both ways: the service goes silent."""
        for name, stream in zip(BLACKHOLE, ("upstream", "downstream"), strict=True):
            self.add_toxic(proxy, "timeout", {"timeout": 0}, stream, name=name)

    def heal(self, proxy: str) -> None:
        """Undo `disable`, `blackhole` and every toxic of this proxy."""
        for toxic in self.toxics(proxy):
            self.remove_toxic(proxy, toxic["name"])
        self.set_enabled(proxy, True)

    def reset(self) -> None:
        self._call("POST", "/reset")

    def close(self) -> None:
        self.http.close()
