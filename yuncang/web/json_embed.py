"""JSON that is safe inside an HTML ``<script>`` element, whatever strings it carries.

An orchard name imported from a CSV can hold ``<!--<script>`` or ``</script>``; inside a script element
the HTML parser acts on those before JavaScript ever sees the JSON (HTML Living Standard, "script data
escaped state"). Escaping every ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026`` leaves the
parser nothing to act on, and U+2028/U+2029 (line terminators in older JavaScript) are escaped too; the
text is still the same JSON for ``JSON.parse`` (the escapes are JSON string escapes, and these characters
only ever occur inside strings).
"""

from __future__ import annotations

import json
from typing import Any

_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def escape_json_for_html(text: str) -> str:
    """A JSON document's text with the characters an HTML parser acts on escaped."""
    return text.translate(_ESCAPES)


def json_for_html(obj: Any, cls: type[json.JSONEncoder] | None = None) -> str:
    """``json.dumps(obj)`` (with ``cls``, e.g. Plotly's encoder) safe to put inside ``<script>``."""
    return escape_json_for_html(json.dumps(obj, cls=cls, ensure_ascii=False))
