"""The HTTP service and web page over a store of indexes (``embedkit serve``).

    from embedkit.serve import create_app
    app = create_app("indexes", token="secret")   # an ASGI app: uvicorn.run(app, host="127.0.0.1")
"""

from .app import create_app

__all__ = ["create_app"]
