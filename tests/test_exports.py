import taskcanvas
from tests.support.canvas import cpn, make_canvas


def test_public_names_are_pinned() -> None:
    assert taskcanvas.__all__ == sorted(taskcanvas.__all__)
    assert taskcanvas.__all__ == [
        "CancelToken", "Canvas", "DslError", "DslIssue", "Engine", "Event", "Limits", "Registry", "Run",
        "RunError", "RunState", "RunStatus", "TaskcanvasError", "load",
    ]


async def test_load_and_run_from_the_package(tmp_path) -> None:
    import json

    path = tmp_path / "c.json"
    path.write_text(json.dumps(make_canvas({
        "begin": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["hi {sys.query}"]})})))
    for source in (path, str(path), path.read_text()):
        engine = taskcanvas.Engine(taskcanvas.load(source))
        run = engine.run(engine.new_session(), query="you")
        events = [e async for e in run]
        assert run.status is taskcanvas.RunStatus.FINISHED
        assert "".join(e["data"]["content"] for e in events if e["event"] == "message") == "hi you"
