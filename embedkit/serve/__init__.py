"""The HTTP service and web page over a store of indexes (``embedkit serve``).

    from embedkit.serve import create_app
    app = create_app("indexes", token="secret")   # an ASGI app: uvicorn.run(app, host="127.0.0.1")

``create_app`` is imported lazily so that the store can read the service's journal without
importing FastAPI.
"""

__all__ = ["create_app"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'embedkit.serve' has no attribute {name!r}")
