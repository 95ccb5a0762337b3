"""Page routers; every module here with a ``router`` is mounted by the app factory."""
