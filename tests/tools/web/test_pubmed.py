"""PubMed against a loopback server answering like NCBI's E-utilities (esearch + efetch XML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskcanvas.tools.http import GuardedClient
from taskcanvas.tools.pubmed import PubMed
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
    "name": "pubmed_search",
    "description": """
PubMed is an openly accessible, free database which includes primarily the MEDLINE database of references and abstracts on life sciences and biomedical topics.
In addition to MEDLINE, PubMed provides access to:
 - older references from the print version of Index Medicus, back to 1951 and earlier
 - references to some journals before they were indexed in Index Medicus and MEDLINE, for instance Science, BMJ, and Annals of Surgery
 - very recent entries to records for an article before it is indexed with Medical Subject Headings (MeSH) and added to MEDLINE
 - a collection of books available full-text and other subsets of NLM records[4]
 - PMC citations
 - NCBI Bookshelf
            """,  # noqa: E501
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with PubMed. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        }
    },
}

ESEARCH = """<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN"
 "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">
<eSearchResult><Count>2140</Count><RetMax>2</RetMax><RetStart>0</RetStart><IdList>
<Id>38000001</Id>
<Id>38000002</Id>
</IdList><TranslationSet/><QueryTranslation>"crispr"[All Fields]</QueryTranslation></eSearchResult>
"""
ESEARCH_NONE = """<?xml version="1.0" encoding="UTF-8" ?>
<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart><IdList/><TranslationSet/>
<WarningList><OutputMessage>No items found.</OutputMessage></WarningList></eSearchResult>
"""
ESEARCH_ERROR = """<?xml version="1.0" encoding="UTF-8" ?>
<eSearchResult><ERROR>Invalid query syntax near position 3</ERROR></eSearchResult>
"""
EFETCH = """<?xml version="1.0" ?>
<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2024//EN"
 "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd">
<PubmedArticleSet>
<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">38000001</PMID>
<Article PubModel="Print-Electronic"><Journal><ISSN IssnType="Electronic">1546-170X</ISSN>
<JournalIssue CitedMedium="Internet"><Volume>30</Volume><Issue>3</Issue><PubDate><Year>2024</Year></PubDate>
</JournalIssue><Title>Nature medicine</Title><ISOAbbreviation>Nat Med</ISOAbbreviation></Journal>
<ArticleTitle>CRISPR therapy for <i>sickle cell</i> disease.</ArticleTitle>
<Pagination><MedlinePgn>100-110</MedlinePgn></Pagination>
<Abstract><AbstractText>  Gene editing of <b>BCL11A</b> works.  </AbstractText></Abstract>
<AuthorList CompleteYN="Y"><Author ValidYN="Y"><LastName>Doe</LastName><ForeName>Jane</ForeName>
<Initials>J</Initials></Author><Author ValidYN="Y"><LastName>Roe</LastName><ForeName>Richard</ForeName></Author>
<Author ValidYN="Y"><CollectiveName>CRISPR Consortium</CollectiveName></Author></AuthorList>
</Article></MedlineCitation>
<PubmedData><ArticleIdList><ArticleId IdType="pubmed">38000001</ArticleId>
<ArticleId IdType="doi">10.1038/s41591-024-0001</ArticleId></ArticleIdList></PubmedData></PubmedArticle>
<PubmedArticle><MedlineCitation Status="In-Data-Review" Owner="NLM"><PMID Version="1">38000002</PMID>
<Article PubModel="Print"><ArticleTitle>A letter.</ArticleTitle></Article></MedlineCitation>
<PubmedData><ArticleIdList><ArticleId IdType="pubmed">38000002</ArticleId></ArticleIdList></PubmedData>
</PubmedArticle>
</PubmedArticleSet>
"""
DOCS = [
    Doc("CRISPR therapy for sickle cell disease.", "https://pubmed.ncbi.nlm.nih.gov/38000001",
        "Title: CRISPR therapy for sickle cell disease.\nAuthors: Jane Doe, Richard Roe\nJournal: Nature medicine\n"
        "Volume: 30\nIssue: 3\nPages: 100-110\nDOI: 10.1038/s41591-024-0001\nAbstract: Gene editing of BCL11A works."),
    Doc("A letter.", "https://pubmed.ncbi.nlm.nih.gov/38000002",
        "Title: A letter.\nAuthors: Unknown Authors\nJournal: Unknown Journal\nVolume: -\nIssue: -\nPages: -\n"
        "DOI: -\nAbstract: No abstract available"),
]


def _settings(tmp_path: Path, replay: ReplayServer, **tools: Any) -> Any:
    return make_settings(tmp_path, endpoints={"pubmed": replay.base}, tools=tools)


async def test_search_and_fetch(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/entrez/eutils/esearch.fcgi", text=ESEARCH, content_type="text/xml; charset=UTF-8")
    replay.reply("GET", "/entrez/eutils/efetch.fcgi", text=EFETCH, content_type="text/xml; charset=UTF-8")
    turn = await run_tool(PubMed, {"top_n": 2, "email": "me@example.org"}, http=http,
                          settings=_settings(tmp_path, replay), query="crispr")
    assert turn.error is None, turn.error
    search, fetch = replay.requests
    assert search.args() == {"db": "pubmed", "term": "crispr", "retmax": "2", "tool": "taskcanvas",
                             "email": "me@example.org"}
    assert fetch.args() == {"db": "pubmed", "id": "38000001,38000002", "retmode": "xml", "tool": "taskcanvas",
                            "email": "me@example.org"}
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)
    assert turn.text == kb_prompt(DOCS)
    assert_references(turn.state, DOCS)
    started = next(d for d in turn.of("node_started") if d["component_id"] == TOOL)
    assert started["thoughts"] == "Looking for scholarly papers on `crispr`,” prioritising reputable sources."


async def test_ncbi_api_key_from_settings(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/entrez/eutils/esearch.fcgi", text=ESEARCH_NONE, content_type="text/xml")
    settings = make_settings(tmp_path, endpoints={"pubmed": replay.base},
                             tools={"pubmed": {"api_key_env": "NCBI_API_KEY"}}, env={"NCBI_API_KEY": "ncbi-123"})
    turn = await run_tool(PubMed, {}, http=http, settings=settings, query="nothing at all")
    assert turn.error is None, turn.error
    request = replay.only()  # nothing found: no fetch
    assert request.arg("api_key") == "ncbi-123"
    assert request.arg("email") == "A.N.Other@example.com"
    assert request.arg("retmax") == "12"
    assert turn.output(TOOL, "formalized_content") == ""


async def test_search_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/entrez/eutils/esearch.fcgi", text=ESEARCH_ERROR, content_type="text/xml")
    turn = await run_tool(PubMed, {}, http=http, settings=_settings(tmp_path, replay), query="((")
    assert_failed(turn, "PubMed's search failed: Invalid query syntax near position 3")


async def test_http_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/entrez/eutils/esearch.fcgi", json={"error": "API rate limit exceeded", "count": "11"},
                 status=429)
    turn = await run_tool(PubMed, {}, http=http, settings=_settings(tmp_path, replay), query="crispr")
    assert_failed(turn, "PubMed answered HTTP 429: API rate limit exceeded")


async def test_agent_tool_call(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/entrez/eutils/esearch.fcgi", text=ESEARCH, content_type="text/xml")
    replay.reply("GET", "/entrez/eutils/efetch.fcgi", text=EFETCH, content_type="text/xml")
    call = await call_as_agent_tool(PubMed, {}, {"query": "crispr"}, http=http, settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt(DOCS)


def test_schema_is_ragflows() -> None:
    assert schema_of(PubMed) == ragflow_schema(RAGFLOW_META)
    assert PubMed.meta == RAGFLOW_META
