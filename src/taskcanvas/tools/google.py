"""Google through SerpApi (ragflow ``agent/tools/google.py``, spec §5.2).

ragflow uses SerpApi's client (``google-search-results``); taskcanvas sends the same search
through the guarded client::

    GET {serpapi}/search.json?engine=google&q=<q>&google_domain=google.com&gl=<country>&hl=<language>
                             &start=<start>&num=<num>&api_key=<key>

The key is the component's ``api_key``, else ``[tools.serpapi]`` of the settings. Results are
``organic_results``: a chunk's title is ``title``, its URL ``link``, its text the source
description of ``about_this_result`` or else the ``snippet``; ``json`` is the organic results.
An answer without ``organic_results`` is an error with SerpApi's own message (an invalid key,
an exhausted quota, or "Google hasn't returned any results"), as in ragflow.

Differences from ragflow:

- ``start`` and ``num`` (the model's paging arguments, the component's "From" and "Limit")
  are sent; ragflow declares them but never sends them.
- ragflow refuses to load a canvas whose Google tool has no ``api_key``; taskcanvas takes the
  key from the settings too, so a missing key fails the call, naming both places.
- The "thoughts" line shows the query (``q``); ragflow looks up ``query`` and shows "-_-!".
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import ServiceError, WebTool, endpoint, tool_secret
from taskcanvas.tools.base import ToolMeta, ToolParams

__all__ = ["COUNTRIES", "LANGUAGES", "Google", "GoogleParams"]

_META: ToolMeta = {
    "name": "google_search",
    "description": "Search the world's information, including webpages, images, videos and more. Google has many "
                   "special features to help you find exactly what you're looking ...",
    "parameters": {
        "q": {
            "type": "string",
            "description": "The search keywords to execute with Google. The keywords should be the most important "
                           "words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        },
        "start": {
            "type": "integer",
            "description": "Parameter defines the result offset. It skips the given number of results. It's used for "
                           "pagination. (e.g., 0 (default) is the first page of results, 10 is the 2nd page of "
                           "results, 20 is the 3rd page of results, etc.). Google Local Results only accepts "
                           "multiples of 20(e.g. 20 for the second page results, 40 for the third page results, "
                           "etc.) as the `start` value.",
            "default": "0",
            "required": False,
        },
        "num": {
            "type": "integer",
            "description": "Parameter defines the maximum number of results to return. (e.g., 10 (default) returns "
                           "10 results, 40 returns 40 results, and 100 returns 100 results). The use of num may "
                           "introduce latency, and/or prevent the inclusion of specialized result types. It is "
                           "better to omit this parameter unless it is strictly necessary to increase the number "
                           "of results per page. Results are not guaranteed to have the number of results "
                           "specified in num.",
            "default": "6",
            "required": False,
        },
    },
}

_COUNTRIES_TEXT = (
    "af al dz as ad ao ai aq ag ar am aw au at az bs bh bd bb by be bz bj bm bt bo ba bw bv br io bn bg bf bi kh "
    "cm ca cv ky cf td cl cn cx cc co km cg cd ck cr ci hr cu cy cz dk dj dm do ec eg sv gq er ee et fk fo fj fi "
    "fr gf pf tf ga gm ge de gh gi gr gl gd gp gu gt gn gw gy ht hm va hn hk hu is in id ir iq ie il it jm jp jo "
    "kz ke ki kp kr kw kg la lv lb ls lr ly li lt lu mo mk mg mw my mv ml mt mh mq mr mu yt mx fm md mc mn ms ma "
    "mz mm na nr np nl an nc nz ni ne ng nu nf mp no om pk pw ps pa pg py pe ph pn pl pt pr qa re ro ru rw sh kn "
    "lc pm vc ws sm st sa sn rs sc sl sg sk si sb so za gs es lk sd sr sj sz se ch sy tw tj tz th tl tg tk to tt "
    "tn tr tm tc tv ug ua ae uk gb us um uy uz vu ve vn vg vi wf eh ye zm zw"
)
COUNTRIES = tuple(_COUNTRIES_TEXT.split())
"""The countries ragflow accepts (``gl``)."""

_LANGUAGES_TEXT = (
    "af ak sq ws am ar hy az eu be bem bn bh xx-bork bs br bg bt km ca chr ny zh-cn zh-tw co hr cs da nl xx-elmer "
    "en eo et ee fo tl fi fr fy gaa gl ka de el kl gn gu xx-hacker ht ha haw iw hi hu is ig id ia ga it ja jw kn "
    "kk rw rn xx-klingon kg ko kri ku ckb ky lo la lv ln lt loz lg ach mk mg ms ml mt mv mi mr mfe mo mn sr-me my "
    "ne pcm nso no nn oc or om ps fa xx-pirate pl pt pt-br pt-pt pa qu ro rm nyn ru gd sr sh st tn crs sn sd si sk "
    "sl so es es-419 su sw sv tg ta tt te th ti to lua tum tr tk tw ug uk ur uz vu vi cy wo xh yi yo zu"
)
LANGUAGES = tuple(_LANGUAGES_TEXT.split())
"""The interface languages ragflow accepts (``hl``)."""


def _whole(value: Any, name: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ServiceError(f"{name} {value!r} is not a whole number") from None
    if number < 0:
        raise ServiceError(f"{name} {value!r} must not be negative")
    return number


class GoogleParams(ToolParams):
    q: Any = "{sys.query}"
    start: Any = 0
    num: Any = 6
    api_key: str | None = ""
    country: str = "cn"
    language: str = "en"

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        if v not in COUNTRIES:
            raise ValueError(f"country {v!r} is not supported: use a two-letter country code such as us, gb or cn")
        return v

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        if v not in LANGUAGES:
            raise ValueError(f"language {v!r} is not supported: use a Google interface language such as en, de "
                             "or zh-cn")
        return v


class Google(WebTool):
    component_name = "Google"
    Params = GoogleParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "Google"
    thoughts_text = "\nKeywords: {}\nLooking for the most relevant articles.\n        "
    thoughts_arg = "q"

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, GoogleParams)
        state = ctx.state
        q = args.get("q")
        if not q:
            return self.empty(state)
        key = params.api_key or tool_secret(ctx, "serpapi")
        if not key:
            raise self.missing_key("serpapi", "a SerpApi API key")
        start = args.get("start")
        num = args.get("num")
        query = {"engine": "google", "q": str(q), "google_domain": "google.com", "gl": params.country,
                 "hl": params.language,
                 "start": _whole(params.start if start in (None, "") else start, "start"),
                 "num": _whole(params.num if num in (None, "") else num, "num"),
                 "api_key": key}
        data = await self.request_json(ctx, "GET", endpoint(ctx, "serpapi") + "/search.json", params=query)
        if not isinstance(data, dict) or "organic_results" not in data:
            message = data.get("error") if isinstance(data, dict) else None
            raise ServiceError(str(message or "SerpApi returned no organic_results."))
        results = data["organic_results"]
        self.add_chunks(state, results,
                        title=lambda r: r.get("title", ""),
                        url=lambda r: r.get("link", ""),
                        content=lambda r: ((r.get("about_this_result") or {}).get("source") or {}).get(
                            "description", r.get("snippet", "")))
        state.set_output(self.id, "json", results)
        return state.output(self.id, "formalized_content")
