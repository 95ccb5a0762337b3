"""docker-compose.yml read as a recipe for native processes (the production rehearsal's input).

What compose would do, done here without containers:

* **Variables**: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``,
  ``${VAR?message}`` and ``$$`` are interpolated from a given mapping (the ``.env`` the operator writes);
  a required variable that is missing raises, as ``docker compose`` refuses to start.
* **Service names as host names**: ``db:5432`` in a URL becomes ``127.0.0.1:<port of the private
  PostgreSQL>``, and so on for each name in ``hosts``.
* **Published ports**: ``"8000:8000"`` means the service listens on its container port; natively it
  gets a free host port, substituted for ``--port <container port>`` in its command.
* **Volumes**: container paths in a config file (Mosquitto's ``password_file``, ``persistence_location``)
  are rewritten to the host paths their mounts point at (bind mounts: files the rehearsal writes; named
  volumes: directories of its own).
* **Image entrypoint**: ``deploy/Dockerfile``'s ``ENTRYPOINT ["yuncang"]`` runs as ``python -m yuncang``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class ComposeError(ValueError):
    """The compose file asks for something the native run cannot give (e.g. a required variable)."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution of one string."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        have = env.get(name)
        if op in (":-", ":?"):
            present = bool(have)
        else:
            present = have is not None
        if present:
            return str(have)
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise ComposeError(f"required variable {name} is not set: {arg}")
        return ""
    return _VAR.sub(sub, value)


def _walk(v: Any, env: Mapping[str, str]) -> Any:
    if isinstance(v, str):
        return interpolate(v, env)
    if isinstance(v, list):
        return [_walk(x, env) for x in v]
    if isinstance(v, dict):
        return {k: _walk(x, env) for k, x in v.items()}
    return v


def load(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The compose document with anchors and ``<<`` merges resolved (YAML) and variables interpolated."""
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or "services" not in doc:
        raise ComposeError(f"{path}: no services")
    return dict(_walk(doc, env))


def map_hosts(value: str, hosts: Mapping[str, tuple[int, int]]) -> str:
    """``name:container_port`` after ``//`` or ``@`` (a URL's authority) -> ``127.0.0.1:host_port``."""
    for name, (cport, hport) in hosts.items():
        value = re.sub(rf"(?<=[@/]){re.escape(name)}:{cport}\b", f"127.0.0.1:{hport}", value)
    return value


def dockerfile_entrypoint(dockerfile: Path) -> list[str]:
    """The exec-form ENTRYPOINT of a Dockerfile."""
    for line in dockerfile.read_text().splitlines():
        if line.strip().upper().startswith("ENTRYPOINT"):
            return list(json.loads(line.split(None, 1)[1]))
    raise ComposeError(f"{dockerfile}: no ENTRYPOINT")


@dataclass
class NativeService:
    """One compose service of the yuncang image as a native process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    restart: str                          #: compose restart policy ("no", "unless-stopped", ...)
    depends_on: dict[str, str] = field(default_factory=dict)   #: service -> condition
    ports: dict[int, int] = field(default_factory=dict)        #: container port -> host port


def yuncang_services(doc: Mapping[str, Any], root: Path, hosts: Mapping[str, tuple[int, int]],
                     free_port: Any) -> dict[str, NativeService]:
    """Services that run the yuncang image (build context ``root``), in compose order, as native
    commands: the image's entrypoint mapped to this interpreter, environment host-mapped, published
    ports given free host ports (``--port N`` in the command follows), ``YUNCANG_HTTP_HOST`` 0.0.0.0
    (every interface of a container) -> 127.0.0.1."""
    entry = dockerfile_entrypoint(root / "deploy" / "Dockerfile")
    if entry != ["yuncang"]:
        raise ComposeError(f"unexpected image entrypoint {entry}")
    images = {svc.get("image") for svc in doc["services"].values() if "build" in svc}
    out: dict[str, NativeService] = {}
    for name, svc in doc["services"].items():
        if svc.get("image") not in images or "command" not in svc:
            continue
        env = {k: map_hosts(str(v), hosts) for k, v in (svc.get("environment") or {}).items()}
        if env.get("YUNCANG_HTTP_HOST") == "0.0.0.0":
            env["YUNCANG_HTTP_HOST"] = "127.0.0.1"
        ports: dict[int, int] = {}
        for p in [*(svc.get("ports") or []), *(svc.get("expose") or [])]:  # published or internal-only
            _host, _, container = str(p).rpartition(":")
            ports[int(container)] = free_port()
        cmd = [str(c) for c in svc["command"]]
        for i, c in enumerate(cmd[:-1]):
            if c == "--port" and int(cmd[i + 1]) in ports:
                cmd[i + 1] = str(ports[int(cmd[i + 1])])
        dep = svc.get("depends_on") or {}
        deps = {d: "service_started" for d in dep} if isinstance(dep, list) else {
            d: (c or {}).get("condition", "service_started") for d, c in dep.items()}
        out[name] = NativeService(name, [sys.executable, "-m", "yuncang", *cmd], env,
                                  str(svc.get("restart", "no")), deps, ports)
    return out


def volume_paths(svc: Mapping[str, Any], root: Path, named: Mapping[str, Path]) -> dict[str, Path]:
    """Container path -> host path of a service's volumes (bind mounts relative to ``root``; named
    volumes from ``named``)."""
    out: dict[str, Path] = {}
    for v in svc.get("volumes") or []:
        parts = str(v).split(":")
        src, dst = parts[0], parts[1]
        out[dst] = (root / src).resolve() if src.startswith((".", "/")) else named[src]
    return out


def map_paths(text: str, paths: Mapping[str, Path]) -> str:
    """Rewrite container paths in a config file to host paths (longest container path first)."""
    for dst in sorted(paths, key=len, reverse=True):
        host = str(paths[dst]) + ("/" if dst.endswith("/") else "")
        text = re.sub(rf"(?<![\w/]){re.escape(dst)}", host, text)
    return text
