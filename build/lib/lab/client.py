"""A small client of the lab API, shared by the CLI, `lab demo`, notebooks and tests."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(RuntimeError):
    """The API answered with an error, or did not answer; the message says which."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class LabClient:
    def __init__(self, api_url: str, timeout_s: float = 10.0):
        self.api_url = api_url.rstrip("/")
        self.http = httpx.Client(base_url=self.api_url, timeout=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"the lab API at {self.api_url} did not answer ({exc}); "
                f"is `lab api` (or `lab up`) running?"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            message = body.get("error") if isinstance(body, dict) else body
            raise ApiError(
                f"{method} {path} → {response.status_code}: {message}", response.status_code, body
            )
        return body

    def run(self, x: int, y: float) -> dict[str, Any]:
        return self._call("POST", "/run", json={"x": x, "y": y})

    def stop(self) -> dict[str, Any]:
        return self._call("POST", "/stop")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._call("GET", "/runs", params={"limit": limit})

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/runs/{run_id}")

    def close(self) -> None:
        self.http.close()
