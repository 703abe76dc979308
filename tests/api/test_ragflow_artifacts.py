"""ragflow's artifact link serves CodeExec's files from the blob store, to those who may read the session."""

from __future__ import annotations

import asyncio

import httpx

from taskcanvas.files import LocalBlobStore
from taskcanvas.tools.sandbox import ArtifactStore, artifact_url
from tests.support.server import LiveServer

NOT_FOUND = {"code": 102, "message": "Artifact not found."}


def api(server: LiveServer, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"} if user else {}
    return httpx.Client(base_url=server.url, timeout=30, headers=headers)


def test_an_artifact_is_served_to_the_sessions_reader_only(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    store = ArtifactStore(LocalBlobStore(server.data_dir / "files"))
    name = asyncio.run(store.put("chart.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                 mime_type="image/svg+xml"))
    echo = str(server.agents["Echo"]["id"]).replace("-", "")
    with api(server, "alice") as c:
        session = c.post(f"/api/v1/agents/{echo}/sessions", json={}).json()["data"]["id"]
        url = artifact_url(name, session)
        got = c.get(url)
        wrong_session = c.get(artifact_url(name, "0" * 32)).json()
        wrong_type = c.get(artifact_url(name.replace(".svg", ".png"), session)).json()
        not_allowed = c.get(artifact_url(name.replace(".svg", ".exe"), session)).json()
    assert got.status_code == 200
    assert got.content == b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    assert got.headers["content-type"] == "image/svg+xml"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == f'inline; filename="{name}"'
    assert "sandbox" in got.headers["content-security-policy"]
    assert wrong_session == NOT_FOUND and wrong_type == NOT_FOUND
    assert not_allowed == {"code": 102, "message": "invalid file type"}
    with api(server, "bob") as c:
        assert c.get(url).json() == NOT_FOUND
    with api(server, None) as c:
        assert c.get(url).status_code == 401
