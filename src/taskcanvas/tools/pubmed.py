"""PubMed (ragflow ``agent/tools/pubmed.py``, spec §5.2).

ragflow uses Biopython's ``Bio.Entrez``; taskcanvas calls the same NCBI E-utilities through the
guarded client:

1. ``GET {pubmed}/entrez/eutils/esearch.fcgi?db=pubmed&term=<query>&retmax=<top_n>`` → PMIDs
2. ``GET {pubmed}/entrez/eutils/efetch.fcgi?db=pubmed&id=<pmid,...>&retmode=xml`` → articles
   (``POST`` with the same form past 200 ids, as Biopython does)

both with ``tool=taskcanvas`` and ``email=<email param>`` (NCBI's identification, which Entrez
sends as ``tool=biopython``), and NCBI's ``api_key`` when ``[tools.pubmed]`` has one. As in
ragflow, ``<b>``/``<i>`` markup is removed before the XML is read, each ``PubmedArticle`` is a
chunk titled with its ``ArticleTitle``, linked to ``https://pubmed.ncbi.nlm.nih.gov/<PMID>``,
with ragflow's "Title/Authors/Journal/Volume/Issue/Pages/DOI/Abstract" text as content.

Difference from ragflow: a search that finds nothing ends with empty ``formalized_content``;
ragflow goes on to fetch an empty id list and fails on NCBI's answer.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, ClassVar

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import SearchParams, ServiceError, WebTool, endpoint, tool_secret
from taskcanvas.tools.base import ToolMeta

__all__ = ["PubMed", "PubMedParams", "format_article"]

_META: ToolMeta = {
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
            "description": "The search keywords to execute with PubMed. The keywords should be the most important "
                           "words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        }
    },
}

_MARKUP = re.compile(r"<(/?)b>|<(/?)i>")
_POST_PAST = 200


class PubMedParams(SearchParams):
    top_n: int = 12
    email: str = "A.N.Other@example.com"


class PubMed(WebTool):
    component_name = "PubMed"
    Params = PubMedParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "PubMed"
    thoughts_text = "Looking for scholarly papers on `{}`,” prioritising reputable sources."

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, PubMedParams)
        state = ctx.state
        query = args.get("query")
        if not query:
            return self.empty(state)
        base = endpoint(ctx, "pubmed") + "/entrez/eutils"
        ident = {"tool": "taskcanvas", "email": params.email}
        key = tool_secret(ctx, "pubmed")
        if key:
            ident["api_key"] = key
        found = await self.request(ctx, "GET", base + "/esearch.fcgi", params={
            "db": "pubmed", "term": str(query), "retmax": params.top_n, **ident})
        ids = _search_ids(found.content)
        if not ids:
            self.add_chunks(state, [], title=None, url=None, content=None)
            return state.output(self.id, "formalized_content")
        form = {"db": "pubmed", "id": ",".join(ids), "retmode": "xml", **ident}
        if len(ids) > _POST_PAST:
            fetched = await self.request(ctx, "POST", base + "/efetch.fcgi", data=form)
        else:
            fetched = await self.request(ctx, "GET", base + "/efetch.fcgi", params=form)
        text = _MARKUP.sub("", fetched.content.decode("utf-8", "replace"))
        try:
            root = ET.fromstring(text)
        except ET.ParseError as e:
            raise ServiceError(f"PubMed answered something that is not PubMed XML: {e}") from None
        self.add_chunks(state, root.findall("PubmedArticle"),
                        title=lambda a: _text(a, "MedlineCitation/Article/ArticleTitle"),
                        url=lambda a: "https://pubmed.ncbi.nlm.nih.gov/" + (_text(a, "MedlineCitation/PMID") or ""),
                        content=format_article)
        return state.output(self.id, "formalized_content")


def _search_ids(content: bytes) -> list[str]:
    try:
        root = ET.fromstring(content)
    except ET.ParseError as e:
        raise ServiceError(f"PubMed's search answered something that is not XML: {e}") from None
    error = root.findtext("ERROR")
    if error:
        raise ServiceError(f"PubMed's search failed: {error}")
    return [i.text.strip() for i in root.findall("IdList/Id") if i.text and i.text.strip()]


def _text(node: ET.Element | None, path: str) -> str | None:
    for step in path.split("/"):
        if node is None:
            return None
        node = node.find(step)
    return node.text if node is not None and node.text else None


def format_article(article: ET.Element) -> str:
    """ragflow's ``_format_pubmed_content``."""
    title = _text(article, "MedlineCitation/Article/ArticleTitle") or "No title"
    abstract = _text(article, "MedlineCitation/Article/Abstract/AbstractText") or "No abstract available"
    journal = _text(article, "MedlineCitation/Article/Journal/Title") or "Unknown Journal"
    volume = _text(article, "MedlineCitation/Article/Journal/JournalIssue/Volume") or "-"
    issue = _text(article, "MedlineCitation/Article/Journal/JournalIssue/Issue") or "-"
    pages = _text(article, "MedlineCitation/Article/Pagination/MedlinePgn") or "-"
    authors = []
    for author in article.findall(".//AuthorList/Author"):
        name = f"{_text(author, 'ForeName') or ''} {_text(author, 'LastName') or ''}".strip()
        if name:
            authors.append(name)
    doi = next((e.text for e in article.findall(".//ArticleId") if e.attrib.get("IdType") == "doi"), None)
    return (f"Title: {title}\nAuthors: {', '.join(authors) if authors else 'Unknown Authors'}\nJournal: {journal}\n"
            f"Volume: {volume}\nIssue: {issue}\nPages: {pages}\nDOI: {doi or '-'}\nAbstract: {abstract.strip()}")
