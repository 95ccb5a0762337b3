"""``python -m bench <name> [args]``: runs ``bench.<name>.main(argv)``; each prints one JSON object last."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def _names() -> list[str]:
    return sorted(i.name for i in pkgutil.iter_modules(bench.__path__) if not i.name.startswith("_"))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench <name> [args]\nbenchmarks: " + ", ".join(_names()))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in _names():
        print(f"no benchmark {name!r}; have: {', '.join(_names())}", file=sys.stderr)
        return 2
    mod = importlib.import_module(f"bench.{name}")
    return int(mod.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
