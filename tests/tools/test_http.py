"""The guarded HTTP client against a real server on 127.0.0.1 (no traffic leaves loopback).

Host names other than ``localhost`` are answered by a scripted resolver patched into the
running loop, so no test depends on, or talks to, the outside world.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from taskcanvas.tools.http import HttpPolicy, SsrfBlocked, create_client
from tests.support.replay import ANY, Recorded, ReplayServer, Reply

LOOPBACK = HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))
PUBLIC_IP = "93.184.216.34"  # only ever handed out by the fake resolver; never connected to


def _echo(request: Recorded) -> Reply:
    return Reply(body={"path": request.target, "host": request.headers["Host"]})


@pytest.fixture
def server(replay: ReplayServer) -> ReplayServer:
    """Echoes the request target and Host header; two paths redirect."""
    replay.route("GET", "/redirect-metadata",
                 Reply(302, b"", headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    replay.route("GET", "/redirect", Reply(302, b"moved", headers={"Location": "/echo"}))
    replay.route("GET", ANY, _echo)
    return replay


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Scripted DNS for ``*.test`` names: ``answers[host]`` is a list of IPs or an exception."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    answers: dict[str, Any] = {}
    calls: list[str] = []

    async def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            calls.append(host)
            answer = answers.get(host, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
            if isinstance(answer, Exception):
                raise answer
            return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                    for ip in answer]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", fake)
    return {"answers": answers, "calls": calls}


# --------------------------------------------------------------------------- blocked
@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/echo",
    "http://localhost:{port}/echo",
    "http://[::1]:{port}/echo",
    "http://[::ffff:127.0.0.1]:{port}/echo",
    "http://0.0.0.0:{port}/echo",
    "http://10.1.2.3/",
    "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
])
async def test_private_destinations_are_blocked_by_default(server: ReplayServer, url: str) -> None:
    async with create_client(HttpPolicy()) as client:
        with pytest.raises(SsrfBlocked, match=r"not a public address|non-public address"):
            await client.get(url.format(port=server.port))
    assert server.requests == []


async def test_the_error_names_the_url_without_secrets_and_says_why() -> None:
    async with create_client(HttpPolicy()) as client:
        with pytest.raises(SsrfBlocked) as info:
            await client.get("http://user:pw@169.254.169.254/latest/meta-data/?token=secret")
    err = info.value
    assert err.url == "http://169.254.169.254/latest/meta-data/"
    assert err.reason == "169.254.169.254 is not a public address"
    assert str(err) == "request to http://169.254.169.254/latest/meta-data/ blocked: " \
                       "169.254.169.254 is not a public address"
    assert "secret" not in str(err) and "pw" not in str(err)


async def test_ipv4_mapped_ipv6_is_judged_as_ipv4() -> None:
    async with create_client(HttpPolicy()) as client:
        with pytest.raises(SsrfBlocked, match=r"that is 127\.0\.0\.1"):
            await client.get("http://[::ffff:127.0.0.1]/")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "file:///etc/passwd", "gopher://example.test/"])
async def test_only_http_and_https_schemes(url: str) -> None:
    async with create_client(HttpPolicy(allow_private=True)) as client:
        with pytest.raises(SsrfBlocked, match=r"scheme .* is not allowed"):
            await client.get(url)


async def test_every_resolved_address_must_be_public(server: ReplayServer, resolver: dict[str, Any]) -> None:
    resolver["answers"]["mixed.test"] = [PUBLIC_IP, "10.0.0.7"]
    async with create_client(HttpPolicy()) as client:
        with pytest.raises(SsrfBlocked, match=r"mixed\.test resolves to a non-public address \(10\.0\.0\.7\)"):
            await client.get("http://mixed.test/")


async def test_a_host_that_does_not_resolve_is_refused(resolver: dict[str, Any]) -> None:
    async with create_client(HttpPolicy()) as client:
        with pytest.raises(SsrfBlocked, match=r"could not resolve host 'nowhere\.test'"):
            await client.get("http://nowhere.test/")


# --------------------------------------------------------------------------- allowed
@pytest.mark.parametrize("policy", [
    LOOPBACK,
    HttpPolicy(allowed_hosts=frozenset({"127.0.0.0/8"})),
    HttpPolicy(allow_private=True),
])
async def test_policy_allows_private_hosts(server: ReplayServer, policy: HttpPolicy) -> None:
    async with create_client(policy) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/echo")
    assert response.status_code == 200
    assert response.json() == {"path": "/echo", "host": f"127.0.0.1:{server.port}"}


async def test_policy_allows_a_host_by_name(server: ReplayServer) -> None:
    async with create_client(HttpPolicy(allowed_hosts=frozenset({"LOCALHOST"}))) as client:
        response = await client.get(f"http://localhost:{server.port}/echo")
    assert response.json()["host"] == f"localhost:{server.port}"


async def test_connection_goes_to_the_checked_address_keeping_the_host_name(
        server: ReplayServer, resolver: dict[str, Any]) -> None:
    resolver["answers"]["service.test"] = ["127.0.0.1"]
    async with create_client(LOOPBACK) as client:
        response = await client.get(f"http://service.test:{server.port}/echo")
    assert response.json() == {"path": "/echo", "host": f"service.test:{server.port}"}
    # Resolved once, by the guard: nothing looked the name up again before connecting.
    assert resolver["calls"] == ["service.test"]


# --------------------------------------------------------------------------- redirects
async def test_redirects_are_not_followed(server: ReplayServer) -> None:
    async with create_client(LOOPBACK) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/echo"
    assert [r.target for r in server.requests] == ["/redirect"]


async def test_a_redirect_followed_on_request_is_checked_again(server: ReplayServer) -> None:
    async with create_client(LOOPBACK) as client:
        with pytest.raises(SsrfBlocked, match=r"169\.254\.169\.254"):
            await client.get(f"http://127.0.0.1:{server.port}/redirect-metadata", follow_redirects=True)
    assert [r.target for r in server.requests] == ["/redirect-metadata"]


# --------------------------------------------------------------------------- proxies
async def test_a_private_proxy_is_blocked(server: ReplayServer, resolver: dict[str, Any]) -> None:
    resolver["answers"]["public.test"] = [PUBLIC_IP]
    async with create_client(HttpPolicy(), proxy=f"http://127.0.0.1:{server.port}") as client:
        with pytest.raises(SsrfBlocked, match=r"proxy http://127\.0\.0\.1:\d+/?: 127\.0\.0\.1 is not a public"):
            await client.get("http://public.test/page")
    assert server.requests == []


async def test_an_allowed_proxy_gets_the_request(server: ReplayServer, resolver: dict[str, Any]) -> None:
    resolver["answers"]["public.test"] = [PUBLIC_IP]
    async with create_client(LOOPBACK, proxy=f"http://127.0.0.1:{server.port}") as client:
        response = await client.get("http://public.test/page?x=1")
    assert response.json() == {"path": "http://public.test/page?x=1", "host": "public.test"}


async def test_the_destination_behind_a_proxy_is_checked(server: ReplayServer) -> None:
    async with create_client(LOOPBACK, proxy=f"http://127.0.0.1:{server.port}") as client:
        with pytest.raises(SsrfBlocked, match=r"10\.0\.0\.1 is not a public address"):
            await client.get("http://10.0.0.1/")
    assert server.requests == []


async def test_with_proxy_keeps_policy_and_options(server: ReplayServer, resolver: dict[str, Any]) -> None:
    resolver["answers"]["public.test"] = [PUBLIC_IP]
    async with (create_client(LOOPBACK, headers={"X-Test": "1"}) as client,
                client.with_proxy(f"http://127.0.0.1:{server.port}") as proxied):
        assert proxied.policy is client.policy
        assert proxied.headers["x-test"] == "1"
        response = await proxied.get("http://public.test/")
    assert response.json()["path"] == "http://public.test/"


def test_non_http_proxies_are_refused() -> None:
    with pytest.raises(SsrfBlocked, match="proxy scheme 'socks5'"):
        create_client(LOOPBACK, proxy="socks5://127.0.0.1:1080")


# --------------------------------------------------------------------------- construction
@pytest.mark.parametrize("option", ["transport", "mounts", "trust_env"])
def test_options_that_would_bypass_the_guard_are_refused(option: str) -> None:
    with pytest.raises(TypeError, match=option):
        create_client(HttpPolicy(), **{option: None})


def test_policy_entries_are_checked() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        HttpPolicy(allowed_hosts=frozenset({"10.0.0.0/33"}))
    with pytest.raises(TypeError, match="not a single string"):
        HttpPolicy(allowed_hosts="127.0.0.1")  # type: ignore[arg-type]
    assert HttpPolicy(allowed_hosts=["::1"]).allowed_hosts == frozenset({"::1"})  # type: ignore[arg-type]
