"""``yuncang`` command line: demo, serve, migrate, seed, registry import/export, and feature commands.

Feature packages add sub-commands as modules in :mod:`yuncang.commands`, each with
``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import pkgutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from yuncang.logs import setup_logging
from yuncang.settings import Settings, load_settings

log = logging.getLogger("yuncang")


async def _serve_until(rt: object, stop: asyncio.Event, *, host: str, port: int,
                       components: bool, workers: int = 1) -> None:
    """Web (in this process, or in ``workers`` processes: :mod:`yuncang.web_workers`) and the components
    (always here, once) until ``stop`` is set or the web server ends."""
    import uvicorn

    from yuncang.app import create_app
    from yuncang.runtime import Runtime, discover_components
    from yuncang.web_workers import WebWorkers

    assert isinstance(rt, Runtime)
    server = web = None
    if workers > 1:
        web = WebWorkers(rt.settings, rt.database_url, rt.mqtt_url, host=host, port=port, count=workers)
        web.start()
        tasks: dict[str, asyncio.Task[None]] = {"web": asyncio.create_task(web.wait_any_exit(), name="web")}
    else:
        app = create_app(rt.settings, rt.pool, mqtt_url=rt.mqtt_url)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on",
                                proxy_headers=False)  # X-Forwarded-For: yuncang.web.client_address
        server = uvicorn.Server(config)
        tasks = {"web": asyncio.create_task(server.serve(), name="web")}
    if components:
        for name, fn in discover_components():
            tasks[name] = asyncio.create_task(fn(rt, stop), name=name)
            log.info("component started", extra={"component": name})
    log.info("yuncang is up", extra={"url": f"http://{host}:{port}/", "components": sorted(tasks),
                                     "web_workers": workers, **({"accounts": _demo_accounts()} if components else {})})
    stopper: asyncio.Task[Any] = asyncio.create_task(stop.wait())
    pending: set[asyncio.Task[Any]] = set(tasks.values())
    while not stop.is_set():
        done, pending = await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is stopper:
                continue
            if task.exception() is not None:
                log.error("component failed", extra={"component": task.get_name()},
                          exc_info=task.exception())
                stop.set()
            elif task.get_name() == "web":
                stop.set()
        pending.discard(stopper)
    if server is not None:
        server.should_exit = True
    if web is not None:
        await asyncio.to_thread(web.stop)
    await asyncio.wait([*tasks.values()], timeout=15)
    for task in tasks.values():
        task.cancel()


def _demo_accounts() -> list[tuple[str, str, str]]:
    """(role, example username, password) of the published demo accounts (docs/users.md)."""
    from yuncang.auth import DEMO_PASSWORDS

    examples = {"admin": "admin", "manager": "coop-shuanglong-1", "grower": "G-00001", "buyer": "yt-zone-1"}
    return [(role, examples[role], pw) for role, pw in DEMO_PASSWORDS.items()]


def run_product(settings: Settings, *, seconds: float | None, components: bool, seed: bool,
                workers: int = 1) -> int:
    """Resolve services, migrate, seed, run web (in ``workers`` processes) + components until Ctrl-C or
    ``seconds`` pass."""
    from registry.seed import SeedParams
    from registry.seed import seed as seed_registry
    from yuncang.migrations import migrate
    from yuncang.runtime import Runtime, Services, open_pool
    from yuncang.schema import describe, storage_path

    t0 = time.monotonic()
    with Services(settings) as svc:
        applied = migrate(svc.database_url)
        pool = open_pool(settings, svc.database_url)
        try:
            with pool.connection() as conn:
                path = storage_path(conn)
                n = seed_registry(conn, SeedParams(seed=settings.seed, orchard_count=settings.orchard_count,
                                                   total_area_mu=settings.total_area_mu)) if seed else 0
                if seed:
                    from yuncang.demo_data import prepare

                    log.info("demo data ready", extra=prepare(conn))
            log.info("database ready", extra={"migrations_applied": len(applied), "storage_path": path,
                                              "storage": describe(path), "orchards_seeded": n,
                                              "embedded_db": svc.embedded_db is not None,
                                              "embedded_broker": svc.embedded_broker is not None,
                                              "startup_s": round(time.monotonic() - t0, 2)})
            rt = Runtime(settings=settings, database_url=svc.database_url, mqtt_url=svc.mqtt_url, pool=pool,
                         embedded=svc.embedded_db is not None,
                         mqtt_protocol="3.1.1" if svc.embedded_broker is not None else "auto")
            asyncio.run(_main(rt, settings, seconds, components, workers))
        finally:
            pool.close()
    log.info("stopped cleanly")
    return 0


async def _main(rt: object, settings: Settings, seconds: float | None, components: bool, workers: int = 1) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)
    await _serve_until(rt, stop, host=settings.http_host, port=settings.http_port, components=components,
                       workers=workers)


def demo_refusal(s: Settings, *, allow_real_db: bool) -> str | None:
    """Why ``yuncang demo`` must not run with these settings, or None.

    The demo seeds 1,603 accounts whose passwords are published (README, docs/users.md); on a real database
    (``YUNCANG_DATABASE_URL`` set) that would open the deployment to anyone, so it needs an explicit flag.
    """
    if s.database_url and not allow_real_db:
        return ("yuncang demo seeds ~1,600 accounts with the published demo passwords; YUNCANG_DATABASE_URL "
                "points at a real database, so nothing was done. Unset it to run on the embedded PostgreSQL, "
                "use `yuncang serve` for a deployment, or pass --allow-demo-accounts-on-real-db if this "
                "database is a throw-away demo.")
    return None


def _cmd_demo(a: argparse.Namespace, s: Settings) -> int:
    refusal = demo_refusal(s, allow_real_db=a.allow_demo_accounts_on_real_db)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if a.port:
        s.http_port = a.port
    return run_product(s, seconds=a.seconds, components=True, seed=True)


def _cmd_serve(a: argparse.Namespace, s: Settings) -> int:
    from yuncang.web_workers import default_workers

    if a.port:
        s.http_port = a.port
    workers = default_workers(a.workers if a.workers is not None else s.web_workers)
    return run_product(s, seconds=a.seconds, components=a.components, seed=False, workers=workers)


def _cmd_migrate(a: argparse.Namespace, s: Settings) -> int:
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    with Services(s) as svc:
        applied = migrate(svc.database_url)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def _cmd_seed(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from registry.seed import SeedParams, seed
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    with Services(s) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            n = seed(conn, SeedParams(seed=a.seed if a.seed is not None else s.seed,
                                      orchard_count=s.orchard_count, total_area_mu=s.total_area_mu),
                     only_if_empty=not a.force)
    print(f"seeded {n} orchards" if n else "registry not empty; nothing seeded (use --force to upsert)")
    return 0


def _cmd_registry(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from registry.csv_io import CsvImportError, export_csv, import_csv
    from registry.devices_csv import export_devices, import_devices
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    with Services(s) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            if a.action == "export":
                out = open(a.file, "w", encoding="utf-8", newline="") if a.file != "-" else sys.stdout
                n = export_csv(conn, out)
                if out is not sys.stdout:
                    out.close()
                    with open(_devices_file(a.file), "w", encoding="utf-8", newline="") as dout:
                        export_devices(conn, dout)
                print(f"exported {n} orchards", file=sys.stderr)
                return 0
            try:
                text = Path(a.file).read_text(encoding="utf-8-sig") if a.file != "-" else sys.stdin.read()
                devices = _devices_file(a.file) if a.file != "-" else None
                dev_text = devices.read_text(encoding="utf-8-sig") if devices is not None and devices.exists() else None
            except UnicodeDecodeError as exc:
                print(f"nothing imported: the file is not UTF-8 (byte {exc.start}: {exc.reason})", file=sys.stderr)
                return 2
            try:  # orchards and their devices together, or nothing
                with conn.transaction():
                    n = import_csv(conn, text)
                    if dev_text is not None:
                        import_devices(conn, dev_text)
                        print(f"devices from {devices} imported", file=sys.stderr)
            except CsvImportError as exc:
                print(f"nothing imported: {len(exc.errors)} bad row(s)", file=sys.stderr)
                for e in exc.errors:
                    print(f"  {e}", file=sys.stderr)
                return 2
            print(f"imported {n} orchards")
            return 0


def _devices_file(path: str) -> Path:
    """The devices CSV travelling with a registry CSV: ``x.csv`` -> ``x.devices.csv``."""
    p = Path(path)
    return p.with_name(p.stem + ".devices.csv")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yuncang", description="巫山脆李云仓 digital orchard and cloud warehouse")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run everything on embedded services (or YUNCANG_* URLs) with simulated orchards")
    d.add_argument("--for", dest="seconds", type=float, default=None, help="stop after this many seconds")
    d.add_argument("--port", type=int, default=None, help="HTTP port (default 8000)")
    d.add_argument("--allow-demo-accounts-on-real-db", action="store_true",
                   help="seed the published demo accounts even though YUNCANG_DATABASE_URL is a real database")
    d.set_defaults(func=_cmd_demo)

    sv = sub.add_parser("serve", help="run the web app (and, with --components, ingest/scheduler/...)")
    sv.add_argument("--for", dest="seconds", type=float, default=None)
    sv.add_argument("--port", type=int, default=None)
    sv.add_argument("--components", action="store_true", help="also run the background components")
    sv.add_argument("--workers", type=int, default=None,
                    help="web worker processes (default YUNCANG_WEB_WORKERS, else one per CPU core)")
    sv.set_defaults(func=_cmd_serve)

    m = sub.add_parser("migrate", help="apply pending schema migrations")
    m.set_defaults(func=_cmd_migrate)

    se = sub.add_parser("seed", help="seed the registry with the 1,546-orchard deployment")
    se.add_argument("--seed", type=int, default=None)
    se.add_argument("--force", action="store_true", help="upsert even if orchards exist")
    se.set_defaults(func=_cmd_seed)

    r = sub.add_parser("registry", help="import or export the registry as CSV")
    r.add_argument("action", choices=["import", "export"])
    r.add_argument("file", help="CSV path, or - for stdin/stdout")
    r.set_defaults(func=_cmd_registry)

    import yuncang.commands as cmds

    for info in pkgutil.iter_modules(cmds.__path__):
        mod = importlib.import_module(f"yuncang.commands.{info.name}")
        if hasattr(mod, "register"):
            mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
