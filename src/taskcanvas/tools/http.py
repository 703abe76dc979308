"""The one outbound HTTP client of taskcanvas, guarded against SSRF.

Canvas authors choose the URLs a run fetches, so a run must not reach the machine it runs on,
the private network behind it, or a cloud metadata endpoint. The rules are ragflow's
(``common/ssrf_guard.py``):

- only ``http`` and ``https`` URLs;
- **every** address a host resolves to must be globally routable (no loopback, private,
  link-local — ``169.254.169.254`` included —, reserved or other special ranges) and not
  multicast (Python counts some multicast ranges as global; ragflow's guard lets them through);
  IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are judged as the IPv4 address they carry;
- a host that cannot be resolved is refused (ragflow treats it as an unsafe URL too);
- redirects are not followed; a proxy is checked like a destination.

The guard sits where the socket is opened: the client's connection pool uses a network
backend that resolves the host once, checks every address and connects to a checked address.
There is no second DNS lookup between the check and the connection, so DNS rebinding cannot
slip another address in, and the URL is never rewritten: the ``Host`` header, TLS SNI and
certificate checks, and connection pooling all keep using the host name. (Rewriting the URL to
the IP and passing ``sni_hostname`` would let two host names on one IP share a TLS connection
verified for only one of them.) Through a proxy the proxy resolves the destination, so the
destination is checked up front and the connection to the proxy is checked and pinned.

:class:`HttpPolicy` says which private hosts are allowed anyway (a test server on loopback, an
internal service); it is passed in, never read from the environment.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from taskcanvas.errors import TaskcanvasError
from taskcanvas.runtime.component import RunContext

__all__ = ["GuardedClient", "HttpPolicy", "SsrfBlocked", "check_host", "create_client", "run_policy"]

_log = logging.getLogger(__name__)

_SCHEMES = frozenset({"http", "https"})
# Options of the transport (the connection pool); httpx ignores them on a client built with a
# transport, so create_client hands them to the guarded transport instead.
_TRANSPORT_OPTIONS = frozenset({"verify", "cert", "http1", "http2", "limits"})
# Options that would put an unguarded transport in front of the guard.
_REFUSED_OPTIONS = frozenset({"transport", "mounts", "proxies", "trust_env", "app"})

_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SsrfBlocked(TaskcanvasError):
    """A request the SSRF guard refused: the URL (without credentials or query) and why."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = _display_url(url)
        self.reason = reason
        super().__init__(f"request to {self.url} blocked: {reason}")


@dataclass(frozen=True)
class HttpPolicy:
    """Which destinations the client may reach besides public addresses.

    ``allowed_hosts`` holds host names (allowed whatever they resolve to) and IP addresses or
    CIDR networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``) allowed even though not public.
    ``allow_private`` allows every address, like ragflow's ``ALLOW_ANY_HOST``; the scheme rule
    still applies.
    """

    allow_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _networks: tuple[_IpNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allowed_hosts, str):
            raise TypeError("HttpPolicy.allowed_hosts must be a set of host names, addresses or networks, "
                            "not a single string")
        entries = frozenset(self.allowed_hosts)
        names, networks = _parse_allowed(entries)
        object.__setattr__(self, "allowed_hosts", entries)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_networks", networks)

    @classmethod
    def from_settings(cls, settings: Any) -> HttpPolicy:
        """``[http] allow_private`` / ``allowed_hosts`` (``TASKCANVAS_HTTP_*``) of a :class:`Settings`."""
        return cls(allow_private=bool(settings.http_allow_private),
                   allowed_hosts=frozenset(settings.http_allowed_hosts))

    def allows_name(self, host: str) -> bool:
        """True when ``host`` is allowed by name, whatever it resolves to."""
        return self.allow_private or _normal_host(host) in self._names

    def refusal(self, address: _IpAddress) -> str | None:
        """Why ``address`` may not be reached (not global, or multicast, and not allowed), or ``None``."""
        effective = _effective_ip(address)
        if self.allow_private or (effective.is_global and not effective.is_multicast):
            return None
        if any(effective in net or address in net for net in self._networks):
            return None
        shown = f"{address} (that is {effective})" if effective is not address else str(address)
        return f"{shown} is not a public address"


class GuardedClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose every connection goes through the SSRF guard."""

    def __init__(self, policy: HttpPolicy, *, proxy: str | None, options: dict[str, Any]) -> None:
        self.policy = policy
        self._options = dict(options)
        transport_kw = {k: options[k] for k in _TRANSPORT_OPTIONS & options.keys()}
        client_kw = {k: v for k, v in options.items() if k not in _TRANSPORT_OPTIONS}
        client_kw.setdefault("follow_redirects", False)
        super().__init__(transport=_GuardedTransport(policy, proxy=proxy, **transport_kw), trust_env=False,
                         **client_kw)

    def with_proxy(self, proxy: str) -> GuardedClient:
        """A new client with the same policy and options that sends everything through ``proxy``.

        The caller closes it (``async with``); the proxy address is checked like a destination.
        """
        return GuardedClient(self.policy, proxy=proxy, options=self._options)


def run_policy(ctx: RunContext) -> HttpPolicy:
    """The policy a run's own connections follow (SMTP, databases, the browser): the guarded
    client's, else the settings', else public hosts only."""
    if isinstance(ctx.http, GuardedClient):
        return ctx.http.policy
    settings = ctx.services.get("settings")
    return HttpPolicy() if settings is None else HttpPolicy.from_settings(settings)


def create_client(policy: HttpPolicy, *, proxy: str | None = None, **httpx_kwargs: Any) -> GuardedClient:
    """The guarded client: ``httpx.AsyncClient`` options (``timeout``, ``headers``, ``verify``, ...).

    Redirects are not followed by default; a request or client that follows them has every hop
    checked again. ``transport``/``mounts`` are refused (they would bypass the guard), and proxies come
    only from ``proxy``, never from the environment.
    """
    refused = sorted(_REFUSED_OPTIONS & httpx_kwargs.keys())
    if refused:
        raise TypeError(f"create_client does not accept {', '.join(refused)}: the SSRF guard must own the "
                        "transport (pass a proxy with proxy=)")
    return GuardedClient(policy, proxy=proxy, options=httpx_kwargs)


async def check_host(host: str, policy: HttpPolicy, port: int = 0) -> list[str]:
    """The addresses of ``host`` that ``policy`` lets a connection that is not HTTP reach (a
    database, an SMTP server), by the same rules as the HTTP guard; raises :class:`SsrfBlocked`.

    Connect to one of the returned addresses, not to the name: a second DNS lookup could bring
    in another address (DNS rebinding).
    """
    try:
        addresses = await _checked_addresses(host.strip(), port, policy)
    except _Refused as e:
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        _log.warning("SSRF guard blocked host %s: %s", shown, e.reason)
        raise SsrfBlocked(shown, e.reason) from None
    return [str(address) for address in addresses]


# --------------------------------------------------------------------------- transport
class _Refused(Exception):
    """Raised below httpx (no URL known there); the transport turns it into :class:`SsrfBlocked`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool's network backend replaced by the guard."""

    def __init__(self, policy: HttpPolicy, *, proxy: str | None = None, **options: Any) -> None:
        proxy_url = httpx.URL(proxy) if proxy else None
        if proxy_url is not None and proxy_url.scheme not in _SCHEMES:
            raise SsrfBlocked(str(proxy_url), f"the proxy scheme {proxy_url.scheme!r} is not allowed "
                                              "(only http and https)")
        super().__init__(proxy=proxy_url, trust_env=False, **options)
        pool = self._pool
        if not isinstance(getattr(pool, "_network_backend", None), httpcore.AsyncNetworkBackend):
            raise RuntimeError("this httpcore version has no network backend to guard; "
                               "taskcanvas needs httpcore 1.x")
        pool._network_backend = _GuardedBackend(policy)
        self._policy = policy
        self._proxy_url = proxy_url

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in _SCHEMES:
            raise SsrfBlocked(str(url), f"the scheme {url.scheme!r} is not allowed (only http and https)")
        if not url.host:
            raise SsrfBlocked(str(url), "the URL has no host")
        try:
            if self._proxy_url is not None:
                # The proxy resolves the destination itself: check it here, as ragflow does.
                await _checked_addresses(url.host, url.port or _default_port(url.scheme), self._policy)
        except _Refused as e:
            _log.warning("SSRF guard blocked %s://%s: %s", url.scheme, url.host, e.reason)
            raise SsrfBlocked(str(url), e.reason) from None
        try:
            return await super().handle_async_request(request)
        except _Refused as e:
            reason = e.reason if self._proxy_url is None else f"proxy {_display_url(str(self._proxy_url))}: {e.reason}"
            _log.warning("SSRF guard blocked %s://%s: %s", url.scheme, url.host, reason)
            raise SsrfBlocked(str(url), reason) from None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to checked addresses, resolving each host once."""

    def __init__(self, policy: HttpPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await _checked_addresses(host, port, self._policy)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                failure = e
        assert failure is not None
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise _Refused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# --------------------------------------------------------------------------- checks
async def _checked_addresses(host: str, port: int, policy: HttpPolicy) -> list[_IpAddress]:
    """The addresses of ``host``, each one allowed by ``policy``; raises :class:`_Refused`.

    A literal address is not resolved. A host allowed by name is resolved but not judged.
    """
    literal = _ip_literal(host)
    if literal is not None:
        reason = policy.refusal(literal)
        if reason:
            raise _Refused(reason)
        return [literal]
    addresses = await _resolve(host, port)
    if not policy.allows_name(host):
        for address in addresses:
            reason = policy.refusal(address)
            if reason:
                raise _Refused(f"{host} resolves to a non-public address ({address})")
    return addresses


async def _resolve(host: str, port: int) -> list[_IpAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise _Refused(f"could not resolve host {host!r}: {e}") from None
    found: dict[_IpAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        found.setdefault(ipaddress.ip_address(sockaddr[0]), None)
    if not found:
        raise _Refused(f"host {host!r} resolved to no addresses")
    return list(found)


def _ip_literal(host: str) -> _IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _effective_ip(address: _IpAddress) -> _IpAddress:
    """The IPv4 address inside an IPv4-mapped IPv6 address, so ``::ffff:127.0.0.1`` is loopback."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _normal_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _parse_allowed(entries: frozenset[str]) -> tuple[frozenset[str], tuple[_IpNetwork, ...]]:
    names: set[str] = set()
    networks: list[_IpNetwork] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            raise ValueError("HttpPolicy.allowed_hosts has an empty entry")
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            if "/" in text or ":" in text:
                raise ValueError(f"HttpPolicy.allowed_hosts entry {entry!r} is neither a host name "
                                 "nor an IP address or network") from None
            names.add(_normal_host(text))
    return frozenset(names), tuple(networks)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _display_url(url: str) -> str:
    """``url`` without user info, query or fragment: errors and logs must not leak secrets."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
