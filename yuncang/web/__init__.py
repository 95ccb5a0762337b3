"""The web layer: JSON API (``api/``) and pages (``pages/``), listed in :mod:`yuncang.web.main`.

See docs/web-layout.md for where a new page, endpoint or query goes.
"""
