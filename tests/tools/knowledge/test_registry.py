"""Resolving the knowledge base ids a canvas names, and searching local and remote ones together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.config import ConfigError, Settings
from taskcanvas.tools.http import GuardedClient, HttpPolicy, create_client
from taskcanvas.tools.knowledge import KnowledgeBases, KnowledgeError, LocalTarget, RagflowTarget
from tests.support.replay import ReplayServer
from tests.tools.knowledge.ragflow_server import API_KEY, running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump-notes.txt").write_text("Our own notes: the pump hums when the filter is dirty.", encoding="utf-8")
    (docs / "other.txt").write_text("Unrelated text about gardens and roses.", encoding="utf-8")
    data = tmp_path / "data"
    kbs = KnowledgeBases.from_settings(Settings(data_dir=data))
    kbs.store.add_files("support", [docs / "pump-notes.txt", docs / "other.txt"])
    return data


def _kbs(data_dir: Path, config: dict[str, Any], env: dict[str, str] | None = None) -> KnowledgeBases:
    return KnowledgeBases.from_settings(Settings(data_dir=data_dir, raw={"knowledge_bases": config},
                                                 env=env or {}))


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with running() as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[GuardedClient]:
    async with create_client(HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))) as client:
        yield client


def test_resolution_order(data_dir: Path) -> None:
    kbs = _kbs(data_dir, {
        "helpdesk": {"backend": "local", "name": "support"},
        "a1b2": {"backend": "ragflow", "base_url": "https://ragflow.example.com", "api_key_env": "RF_KEY"},
        "c3d4": {"backend": "ragflow", "base_url": "https://ragflow.example.com", "api_key": "inline",
                 "dataset_id": "remote-id", "timeout": 5},
    }, env={"RF_KEY": "from-env"})
    local = kbs.resolve("helpdesk")
    assert isinstance(local, LocalTarget) and local.kb.name == "support" and local.ref == "helpdesk"
    by_name = kbs.resolve("support")
    assert isinstance(by_name, LocalTarget) and by_name.kb == local.kb
    by_id = kbs.resolve(local.kb.id)
    assert isinstance(by_id, LocalTarget) and by_id.kb == local.kb
    remote = kbs.resolve("a1b2")
    assert isinstance(remote, RagflowTarget)
    assert remote.dataset_id == "a1b2" and remote.server.api_key == "from-env"
    assert remote.server.base_url == "https://ragflow.example.com" and remote.server.timeout == 30
    other = kbs.resolve("c3d4")
    assert isinstance(other, RagflowTarget) and other.dataset_id == "remote-id" and other.server.timeout == 5
    assert len(kbs.resolve_all(["helpdesk", "support", local.kb.id, "a1b2", "", "a1b2"])) == 2


def test_unknown_ids_are_explained(data_dir: Path) -> None:
    kbs = _kbs(data_dir, {"gone": {"backend": "local", "name": "deleted kb"},
                          "nokey": {"backend": "ragflow", "base_url": "https://rf.example", "api_key_env": "UNSET"}})
    with pytest.raises(KnowledgeError) as info:
        kbs.resolve("1a3d1d7afb0611ef")
    message = str(info.value)
    assert "knowledge base '1a3d1d7afb0611ef' is not known" in message
    assert "taskcanvas kb add 1a3d1d7afb0611ef FILE..." in message
    assert '[knowledge_bases."1a3d1d7afb0611ef"]' in message and "api_key_env" in message
    problems = kbs.check(["support", "gone", "nokey", "1a3d1d7afb0611ef", "support"])
    assert len(problems) == 3
    assert "configured in [knowledge_bases.\"gone\"] as the local knowledge base 'deleted kb', which does not " \
           "exist: add files with `taskcanvas kb add 'deleted kb' FILE...`" in problems[0]
    assert "no API key for the ragflow server https://rf.example: set the environment variable UNSET" in problems[1]
    assert kbs.check(["support"]) == []


def test_catch_all_sends_other_ids_to_one_server(data_dir: Path) -> None:
    kbs = _kbs(data_dir, {"*": {"backend": "ragflow", "base_url": "https://rf.example", "api_key": "k"}})
    target = kbs.resolve("869a2368")
    assert isinstance(target, RagflowTarget) and target.dataset_id == "869a2368"
    assert isinstance(kbs.resolve("support"), LocalTarget)  # a local knowledge base comes first
    assert kbs.check(["anything"]) == []


@pytest.mark.parametrize(("config", "message"), [
    ({"x": "local"}, r'\[knowledge_bases\."x"\] in the configuration must be a table'),
    ({"x": {"backend": "s3"}}, r"backend 's3' is not known"),
    ({"x": {"backend": "ragflow"}}, r"base_url is required"),
    ({"x": {"backend": "ragflow", "base_url": "ftp://h"}}, r"must start with http:// or https://"),
    ({"x": {"backend": "ragflow", "base_url": "https://h", "timeout": 0}}, r"timeout must be a positive number"),
    ({"x": {"backend": "local", "base_url": "https://h"}}, r"base_url is not a setting of the local backend"),
    ({"x": {"backend": "local", "name": 3}}, r"name must be a string"),
    ({"*": {"backend": "local"}}, r"catch-all entry must have backend = \"ragflow\""),
    ({"*": {"backend": "ragflow", "base_url": "https://h", "dataset_id": "d"}}, r"remove dataset_id"),
])
def test_configuration_errors(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _kbs(tmp_path, config)


def test_the_section_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[knowledge_bases\] in the configuration must be a table"):
        KnowledgeBases.from_settings(Settings(data_dir=tmp_path, raw={"knowledge_bases": ["x"]}))


async def test_search_local_and_remote_together(data_dir: Path, server: ReplayServer,
                                                http: GuardedClient) -> None:
    kbs = _kbs(data_dir, {
        "manuals": {"backend": "ragflow", "base_url": server.base, "api_key_env": "RF", "dataset_id": "ds-manuals"},
        "faq": {"backend": "ragflow", "base_url": server.base, "api_key_env": "RF", "dataset_id": "ds-faq"},
    }, env={"RF": API_KEY})
    result = await kbs.search(["support", "manuals", "faq"], "pump filter", http=http, top_n=3,
                              similarity_threshold=0.2)
    assert len(server.requests) == 1  # both datasets of the server in one request
    assert server.requests[0].json()["dataset_ids"] == ["ds-manuals", "ds-faq"]
    names = [c["docnm_kwd"] for c in result.chunks]
    assert len(names) == 3 and set(names) == {"pump-notes.txt", "pump.pdf"}
    sims = [c["similarity"] for c in result.chunks]
    assert sims == sorted(sims, reverse=True)
    assert {d["doc_name"]: d["count"] for d in result.doc_aggs} == {"pump.pdf": 2, "pump-notes.txt": 1}
    assert result.total == 3


async def test_search_failures(data_dir: Path, server: ReplayServer, http: GuardedClient) -> None:
    kbs = _kbs(data_dir, {"bad": {"backend": "ragflow", "base_url": server.base, "api_key": "wrong"}})
    with pytest.raises(KnowledgeError, match=r"Authentication error"):
        await kbs.search(["support", "bad"], "pump", http=http)
    with pytest.raises(KnowledgeError, match=r"no HTTP client, so the ragflow knowledge bases 'bad' cannot"):
        await kbs.search(["bad"], "pump")
    with pytest.raises(KnowledgeError, match=r"no knowledge base is selected"):
        await kbs.search(["", ""], "pump")
    with pytest.raises(KnowledgeError, match=r"'nope' is not known"):
        await kbs.search(["support", "nope"], "pump")
