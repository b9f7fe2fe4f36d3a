"""The API docs page works offline: Swagger UI is served from local files, not a CDN."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_docs_page_loads_swagger_from_this_server(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[0]
    bundle = client.get("/docs-static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert client.get("/docs-static/swagger-ui.css").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "verifact"
