"""The API reference at /docs renders from vendored Swagger UI with every outside request blocked."""

from __future__ import annotations

from urllib.parse import urlparse


def test_docs_render_offline(live_server, page, screenshot):
    outside = []

    def only_local(route):
        if urlparse(route.request.url).netloc == urlparse(live_server).netloc:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server}/")
    page.get_by_role("link", name="API", exact=True).click()
    page.wait_for_url(f"{live_server}/docs")
    page.wait_for_selector("#swagger-ui[data-state=ready]")
    page.wait_for_selector(".opblock")

    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/analyze" in summaries
    assert "/api/v1/analyses/{key}/tile" in summaries
    schema_paths = page.request.get(f"{live_server}/openapi.json").json()["paths"]
    assert len(set(summaries)) == len(schema_paths), "every documented path is listed"
    assert page.locator(".info .title").inner_text().startswith("VisualizeAI")
    screenshot(page, "docs-offline")
    assert outside == [], f"the page asked for outside addresses: {outside}"
    assert page.problems == []


def test_redoc_leads_to_docs(live_server, page):
    response = page.request.get(f"{live_server}/redoc", max_redirects=0)
    assert response.status == 308 and response.headers["location"] == "/docs"
