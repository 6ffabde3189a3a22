"""`http_request`: one HTTP call from a tool, kept away from the server's own network.

Server-side request forgery is the risk: a model told to "fetch http://169.254.169.254/" must not
reach cloud metadata, loopback services or the private network. So the host name is resolved
here, EVERY address it resolves to is checked, and the connection goes to the checked address
(the original name travels in `Host` and as the TLS server name, so certificates still verify).
A DNS answer that changes between the check and the connection (rebinding) cannot slip through
because no second lookup happens. Redirects are followed by hand, each hop checked the same way.
Bodies are streamed and reading stops at `settings.http_tool_max_bytes`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from typing import Any

import httpx

from podium.runtime.tools.base import Tool, ToolContext, ToolError

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
MAX_REDIRECTS = 5
MAX_TIMEOUT = 60.0
_REDIRECTS = {301, 302, 303, 307, 308}
# Hop-by-hop or routing headers the caller must not set: Host is derived from the URL.
_FORBIDDEN_HEADERS = {"host", "connection", "transfer-encoding", "content-length"}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(ip: Address) -> bool:
    """True for globally routable unicast addresses only."""
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and 64:ff9b::10.0.0.1 smuggle an IPv4 target inside IPv6.
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return is_public(ip.sixtofour)
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return ip.is_global and not (ip.is_multicast or ip.is_loopback or ip.is_link_local
                                 or ip.is_private or ip.is_reserved or ip.is_unspecified)


async def resolve(host: str, port: int, allow_private: bool) -> Address:
    """Resolve `host`, refuse it if any address is non-public, return the one to connect to."""
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ToolError(f"cannot resolve host {host!r}") from exc
        # Strip an IPv6 zone ("fe80::1%eth0") before parsing; link-local is refused anyway.
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        if not addresses:
            raise ToolError(f"cannot resolve host {host!r}")
    if not allow_private:
        blocked = [str(ip) for ip in addresses if not is_public(ip)]
        if blocked:
            raise ToolError(f"refusing {host!r}: it resolves to a non-public address ({', '.join(blocked)}); "
                            "set http_tool_allow_private to allow it")
    # Prefer IPv4: containers and CI hosts often have no IPv6 route.
    return next((ip for ip in addresses if ip.version == 4), addresses[0])


def _check_url(url: httpx.URL) -> None:
    if url.scheme not in ("http", "https"):
        raise ToolError(f"only http and https URLs are allowed, not {url.scheme or 'a relative URL'!r}")
    if not url.host:
        raise ToolError("the URL has no host")
    if url.userinfo:
        raise ToolError("credentials in the URL are not allowed; send an Authorization header")


def _decode(body: bytes, response: httpx.Response) -> str:
    try:
        return body.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset named by the server
        return body.decode("utf-8", errors="replace")


class HttpRequestTool:
    """The tool. Each call gets its own short-lived client (clients are bound to an event loop, and
    one server process may run several); the costly part, the TLS context, is built once and kept."""

    name = "http_request"

    def __init__(self) -> None:
        self._ssl: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        method = args.get("method", "GET").upper()
        headers = {k: v for k, v in (args.get("headers") or {}).items()}
        bad = sorted(k for k in headers if k.lower() in _FORBIDDEN_HEADERS)
        if bad:
            raise ToolError(f"headers not allowed: {', '.join(bad)}")
        body = args.get("body")
        if args.get("json") is not None:
            if body is not None:
                raise ToolError("give either body or json, not both")
            body = httpx.Request("POST", "http://x", json=args["json"]).content.decode()
            headers.setdefault("Content-Type", "application/json")
        timeout = float(args.get("timeout", 10))
        try:
            url = httpx.URL(args["url"])
        except (httpx.InvalidURL, TypeError) as exc:
            raise ToolError(f"invalid URL: {exc}") from exc
        # trust_env=False: an HTTP(S)_PROXY in the environment would connect on our behalf and
        # bypass the address check. No keep-alive: the pool is keyed by IP, and a TLS connection
        # made for one host name must not be reused for another that redirects to the same IP.
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False, follow_redirects=False,
                                     verify=self.ssl_context(),
                                     limits=httpx.Limits(max_keepalive_connections=0)) as client:
            try:
                return await asyncio.wait_for(
                    self._follow(client, method, url, headers, body, ctx), timeout=timeout * (MAX_REDIRECTS + 1))
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise ToolError(f"timed out after {timeout:g}s") from exc
            except httpx.HTTPError as exc:
                raise ToolError(f"request failed: {type(exc).__name__}: {exc}") from exc

    async def _follow(self, client: httpx.AsyncClient, method: str, url: httpx.URL,
                      headers: dict[str, str], body: str | None, ctx: ToolContext) -> dict[str, Any]:
        redirects: list[str] = []
        while True:
            result, location = await self._send(client, method, url, headers, body, ctx)
            if location is None:
                return {**result, "redirects": redirects}
            if len(redirects) >= MAX_REDIRECTS:
                raise ToolError(f"more than {MAX_REDIRECTS} redirects")
            redirects.append(str(url))
            url = url.join(location)
            if result["status"] == 303 or (result["status"] in (301, 302) and method == "POST"):
                method, body = "GET", None  # what browsers do, and what RFC 9110 allows
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}

    async def _send(self, client: httpx.AsyncClient, method: str, url: httpx.URL, headers: dict[str, str],
                    body: str | None, ctx: ToolContext) -> tuple[dict[str, Any], str | None]:
        """One hop: check, connect to the checked address, read at most the size cap."""
        _check_url(url)
        ip = await resolve(url.host, url.port or (443 if url.scheme == "https" else 80),
                           ctx.settings.http_tool_allow_private)
        pinned = url.copy_with(host=str(ip))
        host_header = url.netloc.decode("ascii")
        request = client.build_request(method, pinned, headers={**headers, "Host": host_header},
                                       content=body.encode() if body is not None else None,
                                       extensions={"sni_hostname": url.host})
        limit = ctx.settings.http_tool_max_bytes
        response = await client.send(request, stream=True)
        try:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                return {"status": response.status_code}, response.headers["location"]
            data, truncated = bytearray(), False
            if method != "HEAD":
                async for chunk in response.aiter_bytes():
                    data.extend(chunk)
                    if len(data) > limit:
                        del data[limit:]
                        truncated = True
                        break  # stop reading: the rest never leaves the socket buffer
        finally:
            await response.aclose()
        return {"status": response.status_code, "url": str(url), "headers": dict(response.headers),
                "body": _decode(bytes(data), response), "bytes": len(data), "truncated": truncated}, None


TOOLS = [
    Tool("http_request", "Make an HTTP(S) request and return status, headers and (size-capped) body. "
         "Private, loopback and link-local addresses are refused unless the server allows them.", {
             "type": "object",
             "properties": {
                 "url": {"type": "string", "description": "Absolute http:// or https:// URL", "maxLength": 4096},
                 "method": {"type": "string", "enum": METHODS + [m.lower() for m in METHODS],
                            "description": "HTTP method (default GET)"},
                 "headers": {"type": "object", "additionalProperties": {"type": "string"},
                             "description": "Request headers"},
                 "body": {"type": "string", "description": "Raw request body"},
                 "json": {"description": "A JSON value sent as the body with Content-Type application/json"},
                 "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT,
                             "description": "Seconds per hop (default 10)"},
             },
             "required": ["url"],
             "additionalProperties": False,
         }, HttpRequestTool()),
]
