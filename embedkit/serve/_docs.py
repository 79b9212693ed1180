"""Interactive docs that work offline: Swagger UI from the swagger-ui-bundle package over an
OpenAPI 3.0.3 schema (FastAPI emits 3.1, which the bundled UI cannot render)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def openapi_30(node):
    """FastAPI's OpenAPI 3.1 schema rewritten as OpenAPI 3.0.3, which the bundled Swagger UI
    (3.x/4.x; 3.1 needs 5.x) renders: ``anyOf [X, {"type": "null"}]`` becomes X with
    ``nullable: true``, ``const`` an ``enum``, numeric ``exclusiveMinimum/Maximum`` the 3.0 form."""
    if isinstance(node, list):
        return [openapi_30(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_30(v) for k, v in node.items()}
    if out.get("openapi", "").startswith("3.1"):
        out["openapi"] = "3.0.3"
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        null = ({"type": "null"}, {"nullable": True})  # (the options were rewritten already)
        if isinstance(options, list) and any(x in null for x in options):
            rest = [x for x in options if x not in null]
            del out[key]
            if len(rest) == 1 and "$ref" in rest[0]:
                out["allOf"] = rest
            elif len(rest) == 1:
                out.update({k: v for k, v in rest[0].items() if k not in out})
            else:
                out[key] = rest
            out["nullable"] = True
    if out.get("type") == "null":
        out.pop("type")
        out["nullable"] = True
    if "const" in out and isinstance(out.get("const"), (str, int, float, bool)):
        out["enum"] = [out.pop("const")]
    for bound, strict in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(strict), (int, float)) and not isinstance(out.get(strict), bool):
            out[bound] = out.pop(strict)
            out[strict] = True
    if isinstance(out.get("examples"), list) and "example" not in out and "type" in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    return out


def install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files shipped in the swagger-ui-bundle package: works offline.
    The schema at /openapi.json is OpenAPI 3.0.3 (see :func:`openapi_30`); /redoc, which
    FastAPI would load from a CDN, leads to /docs."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import RedirectResponse
    from swagger_ui_bundle import swagger_ui_path

    generate = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = openapi_30(generate())
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:  # what the service sends on every error instead
                schemas["HTTPValidationError"] = {
                    "title": "Error", "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "string", "title": "Error", "description": "one line"}}}
                schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="embedkit API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc():
        return RedirectResponse("/docs")
