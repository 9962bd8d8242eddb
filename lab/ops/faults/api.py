"""The fault proxy's HTTP API: Toxiproxy 2.x's routes, JSON shapes, status codes and error
bodies (`{"error": ..., "status": ...}`), so Toxiproxy's own clients drive it and `lab`'s client
drives a real Toxiproxy. It listens on loopback only (`lab fault serve`), behind the lab API's
own door (`lab.gate`): the Host and Origin allow-lists, the lab's token when one is set
(`/version` is open, so a probe needs none), JSON bodies only, at most 64 KiB, read no further
than that. Every field is checked by `fields` and `toxics` before anything changes.

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
    GET    /links                                lab's own: {proxy: {"open", "refused"}}
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.config import Settings
from lab.gate import AccessGuard, BodyLimits, Policy
from lab.ops.faults import fields, toxics
from lab.ops.faults.fields import FaultError
from lab.ops.faults.proxy import ListenError, Proxy
from lab.version import __version__

log = logging.getLogger("lab.faults")
MAX_BODY = 64 * 1024
OPEN_PATHS = ("/version",)  # what `lab stack status` and Toxiproxy's `running()` probe


class Proxies:
    """Every proxy of the process, by name, and what the process may hold."""

    def __init__(self, max_proxies: int = 100, max_toxics: int = 32, max_links: int = 512):
        self.by_name: dict[str, Proxy] = {}
        self.max_proxies, self.max_toxics, self.max_links = max_proxies, max_toxics, max_links

    @classmethod
    def of(cls, settings: Settings) -> Proxies:
        return cls(settings.fault_max_proxies, settings.fault_max_toxics, settings.fault_max_links)

    def get(self, name: str) -> Proxy:
        proxy = self.by_name.get(name)
        if proxy is None:
            raise FaultError("proxy not found", 404)
        return proxy

    def _room_for(self, new: int) -> None:
        if len(self.by_name) + new > self.max_proxies:
            raise FaultError(f"bad request body: at most {self.max_proxies} proxies "
                             "(LAB_FAULT_MAX_PROXIES)", field="name")  # fmt: skip

    async def create(self, body: Any) -> Proxy:
        given = fields.proxy(body)
        if given["name"] in self.by_name:
            raise FaultError("proxy already exists", 409)
        self._room_for(1)
        return await self._open(given)

    async def _open(self, given: dict[str, Any]) -> Proxy:
        proxy = Proxy(**given, max_toxics=self.max_toxics, max_links=self.max_links)
        await proxy.start()
        self.by_name[proxy.name] = proxy
        return proxy

    async def populate(self, body: Any, any_port: bool = False) -> list[Proxy]:
        """Create each proxy, replacing one of the same name whose addresses differ; with
        `any_port`, a proxy whose port is taken listens on a free one instead (at start: the
        listening ports are read back from `GET /proxies`). Every entry is checked, and the
        count against LAB_FAULT_MAX_PROXIES, before any proxy is touched."""
        if not isinstance(body, list):
            raise FaultError("bad request body: expected a JSON array of proxies")
        entries = [fields.proxy(entry) for entry in body]
        if len({e["name"] for e in entries}) != len(entries):
            raise FaultError("bad request body: a proxy is named twice", field="name")
        self._room_for(sum(e["name"] not in self.by_name for e in entries))
        out = []
        for entry, raw in zip(entries, body, strict=True):
            existing = self.by_name.get(entry["name"])
            if existing is not None:
                if existing.upstream == entry["upstream"] and (
                    raw.get("listen") in (None, "", existing.listen)
                ):
                    out.append(existing)
                    continue
                await existing.stop()
                del self.by_name[existing.name]
            try:
                out.append(await self._open(entry))
            except ListenError as exc:
                if not any_port:
                    raise
                host, _port = fields.address(entry["listen"], "listen")
                log.warning("%s; %s listens on a free port instead", exc, entry["name"])
                out.append(await self._open({**entry, "listen": fields.joined(host, 0)}))
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


def toxiproxy_error(status: int, message: str, named: list[str] | None) -> dict[str, Any]:
    """Toxiproxy's error body, for refusals made before any route ran (`lab.gate`)."""
    return FaultError(message, status, named[0] if named else None).as_json()


def _handler(fn: Callable[[Request, Proxies], Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Toxiproxy's error shape for every refusal."""

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
    """The JSON body (already bounded in size and depth by `lab.gate.BodyLimits`)."""
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FaultError("bad request body: not JSON", field="body") from None


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
    given = fields.change(await _body(request))
    await proxy.update(given.get("listen"), given.get("upstream"), given.get("enabled"))
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


async def links(_request: Request, proxies: Proxies) -> Any:
    """lab's own route: the links each proxy holds, and the clients it closed at once."""
    return {name: {"open": p.links_open, "refused": p.refused}
            for name, p in proxies.by_name.items()}  # fmt: skip


async def _not_routed(_request: Request, exc: Exception) -> Response:
    """Unknown paths and methods in Toxiproxy's error shape too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return JSONResponse(FaultError(str(getattr(exc, "detail", "not found")).lower(), status)
                        .as_json(), status_code=status)  # fmt: skip


def app(
    settings: Settings,
    proxies: Proxies | None = None,
    opened: list[dict[str, Any]] | None = None,
) -> Starlette:
    """The API over `proxies` (a new set under `settings`' limits by default), opening the
    proxies `opened` (their JSON, as `POST /populate` takes it) at start, behind the lab's
    door with `settings`' hosts, origins and token."""
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
        Route("/links", _handler(links), methods=["GET"]),
    ]
    proxies = proxies or Proxies.of(settings)
    policy = Policy.serving(settings, settings.faults_url, OPEN_PATHS)
    # The first runs first: strangers are refused before anything they send is read.
    door = [
        Middleware(AccessGuard, policy=policy, shape=toxiproxy_error),
        Middleware(BodyLimits, max_bytes=MAX_BODY, json_only=True, depth_status=400,
                   shape=toxiproxy_error),
    ]  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(application: Starlette) -> AsyncIterator[None]:
        application.state.proxies = proxies
        if opened:
            await proxies.populate(opened, any_port=True)
        yield
        await proxies.close()

    return Starlette(
        routes=routes,
        middleware=door,
        lifespan=lifespan,
        exception_handlers={404: _not_routed, 405: _not_routed},
    )
