"""JSON API routers (``/api/v1``, OpenAPI); each is listed in :mod:`yuncang.web.main`."""
