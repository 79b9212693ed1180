"""The HTTP service and web page over a store of indexes (``embedkit serve``).

    from embedkit.serve import create_app, server_config
    import uvicorn
    app = create_app("indexes", token="secret")      # an ASGI app
    uvicorn.Server(server_config(app)).run()         # 127.0.0.1:8000 with the CLI's connection limits

``create_app``, ``server_config`` and ``WorkLimits`` are imported lazily so that the store can
read the service's journal without importing FastAPI.
"""

__all__ = ["create_app", "server_config", "WorkLimits"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("server_config", "WorkLimits"):
        from . import _limits

        return getattr(_limits, name)
    raise AttributeError(f"module 'embedkit.serve' has no attribute {name!r}")
