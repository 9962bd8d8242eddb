"""The fault proxy's HTTP API: Toxiproxy 2.x's routes, JSON shapes, status codes and error
bodies (`{"error": ..., "status": ...}`), so Toxiproxy's own clients drive it and `lab`'s client
drives a real Toxiproxy. It listens on loopback only (`lab fault serve`).

    GET    /version                              {"version": ...}
    GET    /proxies                              {name: proxy}
    POST   /proxies                              201 proxy; 409 when the name is taken
    POST   /populate                             201 {"proxies": [...]}: create or replace
    GET    /proxies/{proxy}                      proxy with its toxics
    POST   /proxies/{proxy}                      update listen, upstream, enabled
    DELETE /proxies/{proxy}                      204
    GET    /proxies/{proxy}/toxics               [toxic]
    POST   /proxies/{proxy}/toxics               toxic; 409 when the name is taken
    GET    /proxies/{proxy}/toxics/{toxic}       toxic
    POST   /proxies/{proxy}/toxics/{toxic}       update its attributes and toxicity
    DELETE /proxies/{proxy}/toxics/{toxic}       204
    POST   /reset                                204: every proxy enabled, every toxic gone
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab import __version__
from lab.ops.faults import toxics
from lab.ops.faults.proxy import Proxy
from lab.ops.faults.toxics import FaultError

log = logging.getLogger("lab.faults")
MAX_BODY = 64 * 1024
MAX_PROXIES = 100


class Proxies:
    """Every proxy of the process, by name."""

    def __init__(self) -> None:
        self.by_name: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        proxy = self.by_name.get(name)
        if proxy is None:
            raise FaultError("proxy not found", 404)
        return proxy

    async def create(self, body: Any) -> Proxy:
        if not isinstance(body, dict):
            raise FaultError("bad request body: expected a JSON object")
        for name in ("name", "upstream"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise FaultError(f"missing required field: {name}")
        if body["name"] in self.by_name:
            raise FaultError("proxy already exists", 409)
        if len(self.by_name) >= MAX_PROXIES:
            raise FaultError(f"bad request body: at most {MAX_PROXIES} proxies")
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise FaultError("bad request body: enabled must be true or false")
        listen = body.get("listen") or "127.0.0.1:0"
        if not isinstance(listen, str):
            raise FaultError("bad request body: listen must be host:port")
        proxy = Proxy(body["name"], listen, body["upstream"], enabled)
        await proxy.start()
        self.by_name[proxy.name] = proxy
        return proxy

    async def populate(self, body: Any, any_port: bool = False) -> list[Proxy]:
        """Create each proxy, replacing one of the same name whose addresses differ; with
        `any_port`, a proxy whose port is taken listens on a free one instead (at start: the
        listening ports are read back from `GET /proxies`)."""
        if not isinstance(body, list):
            raise FaultError("bad request body: expected a JSON array of proxies")
        out = []
        for entry in body:
            if not isinstance(entry, dict):
                raise FaultError("bad request body: expected a JSON array of proxies")
            existing = self.by_name.get(str(entry.get("name")))
            if existing is not None:
                same = existing.upstream == entry.get("upstream") and (
                    entry.get("listen") in (None, existing.listen)
                )
                if same:
                    out.append(existing)
                    continue
                await existing.stop()
                del self.by_name[existing.name]
            try:
                out.append(await self.create(entry))
            except FaultError as exc:
                if not any_port or exc.status != 500 or not isinstance(entry.get("listen"), str):
                    raise
                host = entry["listen"].rpartition(":")[0]
                log.warning("%s; %s listens on a free port instead", exc, entry.get("name"))
                out.append(await self.create({**entry, "listen": f"{host}:0"}))
        return out

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self.by_name[name]

    async def reset(self) -> None:
        for proxy in self.by_name.values():
            await proxy.reset()

    async def close(self) -> None:
        for proxy in self.by_name.values():
            await proxy.stop()


def _handler(fn: Callable[[Request, Proxies], Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Toxiproxy's error shape for every refusal; JSON bodies read once, bounded."""

    async def endpoint(request: Request) -> Response:
        try:
            answer = await fn(request, request.app.state.proxies)
        except FaultError as exc:
            return JSONResponse(exc.as_json(), status_code=exc.status)
        if isinstance(answer, Response):
            return answer
        return JSONResponse(answer)

    return endpoint


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise FaultError(f"bad request body: larger than {MAX_BODY} bytes")
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise FaultError("bad request body: not JSON") from None


async def version(_request: Request, _proxies: Proxies) -> Any:
    return {"version": f"lab-faults {__version__} (Toxiproxy 2 API)"}


async def list_proxies(_request: Request, proxies: Proxies) -> Any:
    return {name: p.as_json() for name, p in proxies.by_name.items()}


async def create_proxy(request: Request, proxies: Proxies) -> Any:
    proxy = await proxies.create(await _body(request))
    return JSONResponse(proxy.as_json(), status_code=201)


async def populate(request: Request, proxies: Proxies) -> Any:
    made = await proxies.populate(await _body(request))
    return JSONResponse({"proxies": [p.as_json() for p in made]}, status_code=201)


async def show_proxy(request: Request, proxies: Proxies) -> Any:
    return proxies.get(request.path_params["proxy"]).as_json()


async def update_proxy(request: Request, proxies: Proxies) -> Any:
    proxy = proxies.get(request.path_params["proxy"])
    body = await _body(request)
    if not isinstance(body, dict):
        raise FaultError("bad request body: expected a JSON object")
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise FaultError("bad request body: enabled must be true or false")
    listen, upstream = body.get("listen"), body.get("upstream")
    for value in (listen, upstream):
        if value is not None and not isinstance(value, str):
            raise FaultError("bad request body: listen and upstream are host:port")
    await proxy.update(listen, upstream, enabled)
    return proxy.as_json()


async def delete_proxy(request: Request, proxies: Proxies) -> Any:
    await proxies.delete(request.path_params["proxy"])
    return Response(status_code=204)


async def list_toxics(request: Request, proxies: Proxies) -> Any:
    return [t.as_json() for t in proxies.get(request.path_params["proxy"]).toxics.values()]


async def create_toxic(request: Request, proxies: Proxies) -> Any:
    proxy = proxies.get(request.path_params["proxy"])
    toxic = toxics.parse(await _body(request))
    proxy.add(toxic)
    return toxic.as_json()


def _toxic(request: Request, proxies: Proxies) -> toxics.Toxic:
    proxy = proxies.get(request.path_params["proxy"])
    toxic = proxy.toxics.get(request.path_params["toxic"])
    if toxic is None:
        raise FaultError("toxic not found", 404)
    return toxic


async def show_toxic(request: Request, proxies: Proxies) -> Any:
    return _toxic(request, proxies).as_json()


async def update_toxic(request: Request, proxies: Proxies) -> Any:
    toxic = _toxic(request, proxies)
    toxic.update(await _body(request))
    return toxic.as_json()


async def delete_toxic(request: Request, proxies: Proxies) -> Any:
    proxies.get(request.path_params["proxy"]).remove(request.path_params["toxic"])
    return Response(status_code=204)


async def reset(_request: Request, proxies: Proxies) -> Any:
    await proxies.reset()
    return Response(status_code=204)


def app(proxies: Proxies | None = None, opened: list[dict[str, Any]] | None = None) -> Starlette:
    """The API over `proxies` (a new, empty set by default), opening the proxies `opened`
    (their JSON, as `POST /populate` takes it) at start."""
    routes = [
        Route("/version", _handler(version), methods=["GET"]),
        Route("/proxies", _handler(list_proxies), methods=["GET"]),
        Route("/proxies", _handler(create_proxy), methods=["POST"]),
        Route("/populate", _handler(populate), methods=["POST"]),
        Route("/reset", _handler(reset), methods=["POST"]),
        Route("/proxies/{proxy}", _handler(show_proxy), methods=["GET"]),
        Route("/proxies/{proxy}", _handler(update_proxy), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}", _handler(delete_proxy), methods=["DELETE"]),
        Route("/proxies/{proxy}/toxics", _handler(list_toxics), methods=["GET"]),
        Route("/proxies/{proxy}/toxics", _handler(create_toxic), methods=["POST"]),
        Route("/proxies/{proxy}/toxics/{toxic}", _handler(show_toxic), methods=["GET"]),
        Route(
            "/proxies/{proxy}/toxics/{toxic}", _handler(update_toxic), methods=["POST", "PATCH"]
        ),  # fmt: skip
        Route("/proxies/{proxy}/toxics/{toxic}", _handler(delete_toxic), methods=["DELETE"]),
    ]
    proxies = proxies or Proxies()

    @contextlib.asynccontextmanager
    async def lifespan(application: Starlette) -> AsyncIterator[None]:
        application.state.proxies = proxies
        if opened:
            await proxies.populate(opened, any_port=True)
        yield
        await proxies.close()

    return Starlette(routes=routes, lifespan=lifespan)
