"""The system routes: health, metrics, the OpenAPI document, unknown routes."""

from tests.support.server import LiveServer


def test_health_names_the_database(server: LiveServer) -> None:
    with server.client() as c:
        answer = c.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["database"] in ("sqlite", "postgresql")


def test_metrics_count_requests(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as c:
        c.get("/healthz")
        text = c.get("/metrics").text
    assert 'taskcanvas_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "taskcanvas_runs_executing" in text


def test_openapi_document_lists_the_faces(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as c:
        document = c.get("/openapi.json").json()
    assert document["info"]["title"] == "taskcanvas"
    assert "/healthz" in document["paths"]


def test_unknown_routes_answer_in_each_faces_shape_before_auth(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as c:
        ragflow = c.get("/api/v1/no/such/route")
        coder = c.get("/api/v2/no-such-route")
    assert ragflow.status_code == 404
    assert ragflow.json() == {"code": 404, "message": "Not Found: /api/v1/no/such/route", "data": None,
                              "error": "Not Found"}
    assert coder.status_code == 404
    assert coder.json() == {"message": "Route not found."}
