"""ArXiv against a loopback server answering like export.arxiv.org/api/query (Atom)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.tools.arxiv import ArXiv
from taskcanvas.tools.http import GuardedClient
from tests.support.replay import ReplayServer
from tests.tools.web.conftest import (
    TOOL,
    Doc,
    assert_failed,
    assert_references,
    call_as_agent_tool,
    kb_prompt,
    make_settings,
    ragflow_schema,
    run_tool,
    schema_of,
)

RAGFLOW_META: dict[str, Any] = {
    "name": "arxiv_search",
    "description": """arXiv is a free distribution service and an open-access archive for nearly 2.4 million scholarly articles in the fields of physics, mathematics, computer science, quantitative biology, quantitative finance, statistics, electrical engineering and systems science, and economics. Materials on this site are not peer-reviewed by arXiv.""",  # noqa: E501
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with arXiv. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        }
    },
}

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3Dall%3Atransformer%26id_list%3D%26start%3D0%26max_results%3D2"
        rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: search_query=all:transformer&amp;id_list=&amp;start=0&amp;max_results=2</title>
  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>
  <updated>2024-06-11T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">81920</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">0</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">2</opensearch:itemsPerPage>
  <entry>
    <id>http://arxiv.org/abs/2406.06525v1</id>
    <updated>2024-06-10T17:59:59Z</updated>
    <published>2024-06-10T17:59:59Z</published>
    <title>Autoregressive Model Beats Diffusion: Llama for Scalable
  Image Generation</title>
    <summary>  We introduce LlamaGen, a new family of image generation models.
Results are strong &amp; scalable.
</summary>
    <author><name>Peize Sun</name></author>
    <author><name>Yi Jiang</name></author>
    <arxiv:comment xmlns:arxiv="http://arxiv.org/schemas/atom">Codes and models are available</arxiv:comment>
    <link href="http://arxiv.org/abs/2406.06525v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2406.06525v1" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.CV"
        scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CV" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/2406.06520v2</id>
    <updated>2024-06-10T17:58:00Z</updated>
    <published>2024-06-10T17:58:00Z</published>
    <title>Decoding the Transformer</title>
    <summary>Transformers, decoded.</summary>
    <author><name>Jane Doe</name></author>
    <link title="doi" href="http://dx.doi.org/10.1000/xyz" rel="related"/>
    <link href="http://arxiv.org/abs/2406.06520v2" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2406.06520v2" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.LG"
        scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>
"""
DOCS = [
    Doc("Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation",
        "http://arxiv.org/pdf/2406.06525v1",
        "We introduce LlamaGen, a new family of image generation models.\nResults are strong & scalable."),
    Doc("Decoding the Transformer", "http://arxiv.org/pdf/2406.06520v2", "Transformers, decoded."),
]

ERROR_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3D%26id_list%3D1234%26start%3D0%26max_results%3D10"
        rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: search_query=&amp;id_list=1234&amp;start=0&amp;max_results=10</title>
  <id>http://arxiv.org/api/kvuntZ8c9a4Eq5CF7KY03nMug+Q</id>
  <updated>2024-06-11T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">1</opensearch:totalResults>
  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id>
    <title>Error</title>
    <summary>incorrect id format for 1234</summary>
    <updated>2024-06-11T00:00:00-04:00</updated>
    <link href="http://arxiv.org/api/errors#incorrect_id_format_for_1234" rel="alternate" type="text/html"/>
    <author><name>arXiv api core</name></author>
  </entry>
</feed>
"""


def _settings(tmp_path: Path, replay: ReplayServer) -> Any:
    return make_settings(tmp_path, endpoints={"arxiv": replay.base})


async def test_search(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/api/query", text=FEED, content_type="application/atom+xml; charset=UTF-8")
    turn = await run_tool(ArXiv, {"top_n": 2, "sort_by": "relevance"}, http=http,
                          settings=_settings(tmp_path, replay), query="all:transformer")
    assert turn.error is None, turn.error
    assert replay.only().args() == {"search_query": "all:transformer", "id_list": "", "sortBy": "relevance",
                                    "sortOrder": "descending", "start": "0", "max_results": "2"}
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)
    assert turn.text == kb_prompt(DOCS)
    assert_references(turn.state, DOCS)


async def test_defaults_and_top_n(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/api/query", text=FEED, content_type="application/atom+xml")
    turn = await run_tool(ArXiv, {"top_n": 1}, http=http, settings=_settings(tmp_path, replay), query="llama")
    assert replay.only().arg("sortBy") == "submittedDate"
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS[:1])


async def test_api_error_says_what_arxiv_said(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/api/query", text=ERROR_FEED, status=400, content_type="application/atom+xml")
    turn = await run_tool(ArXiv, {}, http=http, settings=_settings(tmp_path, replay), query="id:1234")
    assert_failed(turn, "ArXiv answered HTTP 400: incorrect id format for 1234")


async def test_not_a_feed(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/api/query", text="<html><body>Rate exceeded.", content_type="text/html")
    turn = await run_tool(ArXiv, {}, http=http, settings=_settings(tmp_path, replay), query="x")
    error = turn.finished(TOOL)["error"]
    assert error.startswith("arXiv answered something that is not an Atom feed")


async def test_agent_tool_call(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/api/query", text=ERROR_FEED, status=400, content_type="application/atom+xml")
    call = await call_as_agent_tool(ArXiv, {}, {"query": "id:1234"}, http=http, settings=_settings(tmp_path, replay))
    assert call.result == "ArXiv error: ArXiv answered HTTP 400: incorrect id format for 1234"


def test_sort_by_is_checked() -> None:
    with pytest.raises(DslError, match="sort_by"):
        schema_of(ArXiv, {"sort_by": "stars"})


def test_schema_is_ragflows() -> None:
    assert schema_of(ArXiv) == ragflow_schema(RAGFLOW_META)
    assert ArXiv.meta == RAGFLOW_META
