"""DeepL and QWeather through the engine against replay servers on 127.0.0.1 answering in the
services' documented shapes."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.tools.deepl import DeepL
from taskcanvas.tools.qweather import ERROR_CODES, QWeather
from tests.support.canvas import build, cpn, make_canvas
from tests.support.replay import Recorded, ReplayServer, Reply
from tests.tools.data.support import run_tool, settings


def _schema(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    from taskcanvas.components import builtin_registry

    registry = builtin_registry()
    registry.register(cls)
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn(cls.component_name, params)})
    schema: dict[str, Any] = build(dsl, registry).canvas.components["tool"].function_schema()  # type: ignore[attr-defined]
    return schema


# --------------------------------------------------------------------------- DeepL
def _deepl_config(replay: ReplayServer, **tools: Any) -> Any:
    return settings(endpoints={"deepl": replay.base + "/pro", "deepl_free": replay.base + "/free"}, tools=tools)


async def test_deepl_translates(replay: ReplayServer, http: Any) -> None:
    replay.route("POST", "/pro/v2/translate",
                 {"translations": [{"detected_source_language": "ZH", "text": "Good morning"}]})
    turn = await run_tool(DeepL, {"auth_key": "secret-key", "source_lang": "ZH", "target_lang": "EN-US"}, http=http,
                          config=_deepl_config(replay), query="早上好")
    assert turn.error is None, turn.error
    assert turn.output("tool", "formalized_content") == "Good morning"
    assert turn.text == "Good morning"
    seen = replay.requests_to("/pro/v2/translate")[0]
    assert seen.headers.get("Authorization") == "DeepL-Auth-Key secret-key"
    assert seen.json() == {"target_lang": "EN-US", "source_lang": "ZH", "text": ["早上好"]}
    started = next(d for d in turn.of("node_started") if d["component_id"] == "tool")
    assert started["thoughts"] == "Translating into EN-US: 早上好"


async def test_deepl_free_key_and_key_from_settings(replay: ReplayServer, http: Any) -> None:
    replay.route("POST", "/free/v2/translate", {"translations": [{"detected_source_language": "ZH", "text": "Hi"}]})
    config = _deepl_config(replay, deepl={"api_key": "abc:fx"})
    turn = await run_tool(DeepL, {}, http=http, config=config, query="你好")  # auth_key is ragflow's "xxx"
    assert turn.output("tool", "formalized_content") == "Hi"
    assert replay.requests_to("/free/v2/translate")[0].headers.get("Authorization") == "DeepL-Auth-Key abc:fx"


@pytest.mark.parametrize(("status", "body", "error"), [
    (403, {"message": "Wrong endpoint"}, "DeepL error: Authorization failure, check auth_key, message: Wrong endpoint"),
    (456, {}, "DeepL error: Quota for this billing period has been exceeded"),
    (400, {"message": "Value for 'target_lang' not supported."},
     "DeepL error: Bad request, message: Value for 'target_lang' not supported."),
    (500, "oops", "DeepL error: Unexpected status code: 500 Internal Server Error, content: oops."),
])
async def test_deepl_errors(replay: ReplayServer, http: Any, status: int, body: Any, error: str) -> None:
    replay.route("POST", "/pro/v2/translate", Reply(status, body))
    turn = await run_tool(DeepL, {"auth_key": "k", "max_retries": 2, "delay_after_error": 0}, http=http,
                          config=_deepl_config(replay), query="文本")
    assert turn.output("tool", "_ERROR") == error
    assert len(replay.requests_to("/pro/v2/translate")) == 1  # as in ragflow, not retried


async def test_deepl_missing_key_and_empty_text(replay: ReplayServer, http: Any) -> None:
    turn = await run_tool(DeepL, {}, http=http, config=_deepl_config(replay), query="文本")
    assert turn.output("tool", "_ERROR") == ("DeepL error: DeepL needs an auth key: set auth_key in the component, "
                                             "or api_key_env in [tools.deepl] of the taskcanvas settings")
    turn = await run_tool(DeepL, {"auth_key": "k"}, http=http, config=_deepl_config(replay), query="")
    assert turn.error is None
    assert turn.output("tool", "formalized_content") == ""
    assert replay.requests == []


def test_deepl_schema_and_params() -> None:
    assert _schema(DeepL, {}) == {"type": "function", "function": {
        "name": "deepl_translate",
        "description": "DeepL translates text into a target language using the DeepL translation service.",
        "parameters": {"type": "object",
                       "properties": {"query": {"type": "string", "description": "The text to translate."}},
                       "required": ["query"]}}}
    from taskcanvas.dsl.errors import DslError

    with pytest.raises(DslError, match="target_lang 'EN' is not supported"):
        _schema(DeepL, {"target_lang": "EN"})


# --------------------------------------------------------------------------- QWeather
LOOKUP = {"code": "200", "location": [{"name": "北京", "id": "101010100", "lat": "39.90498", "lon": "116.40528",
                                       "adm2": "北京", "adm1": "北京市", "country": "中国", "tz": "Asia/Shanghai",
                                       "utcOffset": "+08:00", "isDst": "0", "type": "city", "rank": "10",
                                       "fxLink": "https://www.qweather.com/weather/beijing-101010100.html"}],
          "refer": {"sources": ["QWeather"], "license": ["QWeather Developers License"]}}
NOW = {"obsTime": "2024-05-01T14:20+08:00", "temp": "24", "feelsLike": "23", "icon": "100", "text": "晴",
       "wind360": "180", "windDir": "南风", "windScale": "3", "windSpeed": "15", "humidity": "30", "precip": "0.0",
       "pressure": "1008", "vis": "30", "cloud": "10", "dew": "5"}
DAILY = [{"fxDate": "2024-05-01", "tempMax": "27", "tempMin": "14", "textDay": "晴"},
         {"fxDate": "2024-05-02", "tempMax": "25", "tempMin": "13", "textDay": "多云"},
         {"fxDate": "2024-05-03", "tempMax": "22", "tempMin": "12", "textDay": "小雨"}]
INDICES = [{"date": "2024-05-01", "type": "1", "name": "运动指数", "level": "2", "category": "较适宜",
            "text": "天气较好，户外运动请注意防晒。"},
           {"date": "2024-05-01", "type": "2", "name": "洗车指数", "level": "1", "category": "适宜",
            "text": "未来两天无雨，适宜洗车。"}]
AIR = {"pubTime": "2024-05-01T14:00+08:00", "aqi": "52", "level": "2", "category": "良", "primary": "PM10",
       "pm10": "54", "pm2p5": "20", "no2": "18", "so2": "2", "co": "0.4", "o3": "110"}


def _qweather(replay: ReplayServer) -> Any:
    base = replay.base
    replay.route("GET", "/geo/v2/city/lookup", LOOKUP)
    return settings(endpoints={"qweather_geo": base + "/geo", "qweather_dev": base + "/dev",
                               "qweather": base + "/paid"})


@pytest.mark.parametrize(("params", "path", "answer", "expected"), [
    ({}, "/dev/v7/weather/now", {"code": "200", "updateTime": "2024-05-01T14:25+08:00", "now": NOW}, str(NOW)),
    ({"time_period": "3d", "user_type": "paid"}, "/paid/v7/weather/3d", {"code": "200", "daily": DAILY},
     "\n".join(str(d) for d in DAILY)),
    ({"type": "indices"}, "/dev/v7/indices/1d", {"code": "200", "daily": INDICES},
     "2024-05-01\n运动指数: 较适宜, 天气较好，户外运动请注意防晒。\n洗车指数: 适宜, 未来两天无雨，适宜洗车。"),
    ({"type": "airquality", "lang": "en"}, "/dev/v7/air/now", {"code": "200", "now": AIR}, str(AIR)),
])
async def test_qweather(replay: ReplayServer, http: Any, params: dict[str, Any], path: str, answer: Any,
                        expected: str) -> None:
    config = _qweather(replay)
    replay.route("GET", path, answer)
    turn = await run_tool(QWeather, {"web_apikey": "wk", **params}, http=http, config=config, query="北京")
    assert turn.error is None, turn.error
    assert turn.output("tool", "formalized_content") == expected
    lookup = replay.requests_to("/geo/v2/city/lookup")[0]
    assert (lookup.arg("location"), lookup.arg("key")) == ("北京", "wk")
    seen: Recorded = replay.requests_to(path)[0]
    assert seen.arg("location") == "101010100"
    assert seen.arg("key") == "wk"
    assert seen.arg("lang") == params.get("lang", "zh")
    if params.get("type") == "indices":
        assert seen.arg("type") == "0"


async def test_qweather_api_codes_are_results(replay: ReplayServer, http: Any) -> None:
    config = _qweather(replay)
    replay.route("GET", "/geo/v2/city/lookup", {"code": "404"})
    turn = await run_tool(QWeather, {"web_apikey": "wk"}, http=http, config=config, query="Atlantis")
    assert turn.error is None
    assert turn.output("tool", "formalized_content") == "**Error** " + ERROR_CODES["404"]
    replay.route("GET", "/geo/v2/city/lookup", Reply(401, {"error": {"status": 401, "type": "unauthorized",
                                                                     "title": "Unauthorized"}}))
    turn = await run_tool(QWeather, {"web_apikey": "bad"}, http=http, config=config, query="北京")
    assert turn.output("tool", "formalized_content") == "**Error** " + ERROR_CODES["401"]
    replay.route("GET", "/geo/v2/city/lookup", LOOKUP)
    replay.route("GET", "/dev/v7/weather/now", {"code": "999"})
    turn = await run_tool(QWeather, {"web_apikey": "wk"}, http=http, config=config, query="北京")
    assert turn.output("tool", "formalized_content") == "**Error** QWeather API returned code 999."


async def test_qweather_failures_are_retried(replay: ReplayServer, http: Any) -> None:
    config = _qweather(replay)
    replay.route("GET", "/dev/v7/weather/now", Reply(502, b"<html>bad gateway</html>", content_type="text/html"))
    turn = await run_tool(QWeather, {"web_apikey": "wk", "max_retries": 1, "delay_after_error": 0}, http=http,
                          config=config, query="北京")
    assert turn.output("tool", "_ERROR") == "QWeather answered HTTP 502 with something that is not JSON"
    assert len(replay.requests_to("/dev/v7/weather/now")) == 2


async def test_qweather_missing_key(replay: ReplayServer, http: Any) -> None:
    turn = await run_tool(QWeather, {}, http=http, config=_qweather(replay), query="北京")
    assert turn.output("tool", "_ERROR") == ("QWeather needs an API key: set web_apikey in the component, or "
                                             "api_key_env in [tools.qweather] of the taskcanvas settings")
    turn = await run_tool(QWeather, {}, http=http, config=settings(
        endpoints={"qweather_geo": replay.base + "/geo"}, tools={"qweather": {"api_key": "from-settings"}}),
        query="北京")
    assert replay.requests_to("/geo/v2/city/lookup")[-1].arg("key") == "from-settings"


def test_qweather_schema() -> None:
    assert _schema(QWeather, {}) == {"type": "function", "function": {
        "name": "qweather",
        "description": "QWeather (和风天气) looks up the current weather, a multi-day forecast, life indices, or air "
                       "quality for a location using the QWeather API.",
        "parameters": {"type": "object", "properties": {"query": {
            "type": "string",
            "description": "The location to look up weather for, e.g. a city name like 'Beijing' or '北京'."}},
            "required": ["query"]}}}
