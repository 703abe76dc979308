"""QWeather (和风天气): current weather, forecasts, life indices or air quality for a place
(ragflow ``agent/tools/qweather.py``, spec §5.2).

QWeather's web API through the run's guarded client, the requests ragflow makes:
``GET {qweather_geo}/v2/city/lookup?location=&key=`` finds the place's id, then
``GET {qweather_dev}/v7/...`` (``user_type: free``) or ``{qweather}/v7/...`` (``paid``):
``weather/<time_period>``, ``indices/1d?type=0`` or ``air/now``, each with ``location``, ``key``
and ``lang``. Base URLs from ``[endpoints] qweather_geo``, ``qweather_dev`` and ``qweather``
(defaults ``https://geoapi.qweather.com``, ``https://devapi.qweather.com``,
``https://api.qweather.com``). The key is the node's ``web_apikey`` unless it is empty or
ragflow's placeholder ``xxx``; then ``[tools.qweather] api_key`` (or ``api_key_env``).

As in ragflow, ``formalized_content`` is what the API returns, written the way ragflow writes it
(the ``now`` object as a Python dict, one daily entry a line, indices as "name: category,
text"); an answer whose ``code`` is not ``"200"`` is ``"**Error** <ragflow's explanation of the
code>"`` — a result, not an error; anything else that fails (no answer, not JSON, an unexpected
shape) raises, is retried ``max_retries`` times, and tells the model ``"QWeather error: ..."``.
The location is URL-encoded (ragflow pastes it into the URL as is).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import stringify
from taskcanvas.tools._endpoints import USER_AGENT, ServiceError, WebTool, endpoint, tool_secret
from taskcanvas.tools.base import ToolMeta, ToolParams

__all__ = ["QWeather", "QWeatherParams"]

_META: ToolMeta = {
    "name": "qweather",
    "description": "QWeather (和风天气) looks up the current weather, a multi-day forecast, life indices, or air "
                   "quality for a location using the QWeather API.",
    "parameters": {
        "query": {"type": "string",
                  "description": "The location to look up weather for, e.g. a city name like 'Beijing' or '北京'.",
                  "default": "{sys.query}", "required": True},
    },
}

ERROR_CODES = {
    "204": "The request was successful, but the region you are querying does not have the data you need at this time.",
    "400": "Request error, may contain incorrect request parameters or missing mandatory request parameters.",
    "401": "Authentication fails, possibly using the wrong KEY, wrong digital signature, wrong type of KEY (e.g. using "
           "the SDK's KEY to access the Web API).",
    "402": "Exceeded the number of accesses or the balance is not enough to support continued access to the service, "
           "you can recharge, upgrade the accesses or wait for the accesses to be reset.",
    "403": "No access, may be the binding PackageName, BundleID, domain IP address is inconsistent, or the data that "
           "requires additional payment.",
    "404": "The queried data or region does not exist.",
    "429": "Exceeded the limited QPM (number of accesses per minute), please refer to the QPM description",
    "500": "No response or timeout, interface service abnormality please contact us",
}
LANGS = ("zh", "zh-hant", "en", "de", "es", "fr", "it", "ja", "ko", "ru", "hi", "th", "ar", "pt", "bn", "ms", "nl",
         "el", "la", "sv", "id", "pl", "tr", "cs", "et", "vi", "fil", "fi", "he", "is", "nb")
_TYPES = ("weather", "indices", "airquality")
_USER_TYPES = ("free", "paid")
_PERIODS = ("now", "3d", "7d", "10d", "15d", "30d")
_PLACEHOLDER = "xxx"


def _one_of(value: Any, name: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not supported: use one of {', '.join(allowed)}")
    return value


class QWeatherParams(ToolParams):
    query: Any = "{sys.query}"
    web_apikey: str | None = _PLACEHOLDER
    lang: str = "zh"
    type: str = "weather"
    user_type: str = "free"
    time_period: str = "now"
    error_code: dict[str, str] = ERROR_CODES

    @field_validator("lang", mode="before")
    @classmethod
    def _lang(cls, v: Any) -> Any:
        return _one_of(v, "lang", LANGS)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        return _one_of(v, "type", _TYPES)

    @field_validator("user_type", mode="before")
    @classmethod
    def _user_type(cls, v: Any) -> Any:
        return _one_of(v, "user_type", _USER_TYPES)

    @field_validator("time_period", mode="before")
    @classmethod
    def _period(cls, v: Any) -> Any:
        return _one_of(v, "time_period", _PERIODS)


class QWeather(WebTool):
    component_name = "QWeather"
    Params = QWeatherParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "QWeather"
    thoughts_text = "Looking up the weather for: {}"

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, QWeatherParams)
        state = ctx.state
        location = args.get("query")
        if isinstance(location, TextStream):
            location = await location.read()
        if not location:
            return self.empty(state)
        location = location if isinstance(location, str) else stringify(location)
        key = params.web_apikey if params.web_apikey and params.web_apikey != _PLACEHOLDER else tool_secret(
            ctx, "qweather")
        if not key:
            raise ServiceError("QWeather needs an API key: set web_apikey in the component, or api_key_env in "
                               "[tools.qweather] of the taskcanvas settings")

        lookup = await self._get(ctx, endpoint(ctx, "qweather_geo") + "/v2/city/lookup",
                                 {"location": location, "key": key})
        if lookup.get("code") != "200":
            return self._finish(state, self._error_message(lookup.get("code")))
        try:
            location_id = lookup["location"][0]["id"]
        except (KeyError, IndexError, TypeError):
            raise ServiceError("QWeather's city lookup answered without a location id") from None
        base = endpoint(ctx, "qweather" if params.user_type == "paid" else "qweather_dev") + "/v7/"
        query = {"location": location_id, "key": key, "lang": params.lang}
        try:
            if params.type == "weather":
                response = await self._get(ctx, base + "weather/" + params.time_period, query)
                if response.get("code") != "200":
                    return self._finish(state, self._error_message(response.get("code")))
                if params.time_period == "now":
                    return self._finish(state, str(response["now"]))
                return self._finish(state, "\n".join(str(i) for i in response["daily"]))
            if params.type == "indices":
                response = await self._get(ctx, base + "indices/1d", {"type": "0", **query})
                if response.get("code") != "200":
                    return self._finish(state, self._error_message(response.get("code")))
                daily = response["daily"]
                return self._finish(state, daily[0]["date"] + "\n" + "\n".join(
                    i["name"] + ": " + i["category"] + ", " + i["text"] for i in daily))
            response = await self._get(ctx, base + "air/now", query)
            if response.get("code") != "200":
                return self._finish(state, self._error_message(response.get("code")))
            return self._finish(state, str(response["now"]))
        except (KeyError, IndexError, TypeError) as e:
            raise ServiceError(f"QWeather answered in an unexpected shape (missing {e})") from None

    def _error_message(self, code: Any) -> str:
        params = self.params
        assert isinstance(params, QWeatherParams)
        return "**Error** " + params.error_code.get(str(code), f"QWeather API returned code {code}.")

    def _finish(self, state: RunState, content: str) -> str:
        state.set_output(self.id, "formalized_content", content)
        return content

    async def _get(self, ctx: RunContext, url: str, query: dict[str, str]) -> dict[str, Any]:
        """The JSON answer, whatever the HTTP status (QWeather says what went wrong in ``code``)."""
        if ctx.http is None:
            raise ServiceError("QWeather needs an HTTP client (none was configured)")
        try:
            response: httpx.Response = await ctx.http.get(url, params=query, timeout=self.timeout,
                                                          headers={"User-Agent": USER_AGENT})
        except httpx.TimeoutException:
            raise ServiceError(f"QWeather did not answer within {self.timeout:g} seconds") from None
        except httpx.TransportError as e:
            raise ServiceError(f"could not reach QWeather: {e or type(e).__name__}") from None
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServiceError(f"QWeather answered HTTP {response.status_code} with something that is not "
                               "JSON") from None
        if not isinstance(data, dict):
            raise ServiceError("QWeather answered JSON that is not an object")
        if "code" not in data and isinstance(data.get("error"), dict):
            # API v2 error shape: {"error": {"status": 401, "title": ...}}
            data = {"code": str(data["error"].get("status", response.status_code))}
        return data

