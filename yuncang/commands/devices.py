"""``yuncang devices``: the device fleet (add, import, export, list, move, retire) and broker credentials.

``yuncang devices credentials issue --gateways`` gives every native gateway its own MQTT account and
prints each password once; ``credentials files`` writes Mosquitto's ``password_file`` and
``acl_file`` (the embedded broker re-reads them on change) and Mosquitto's dynamic-security
configuration (loaded when Mosquitto starts).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from yuncang.settings import Settings, ingest_profile_options


@contextmanager
def _database(s: Settings) -> Iterator[Any]:
    """A migrated connection to the configured database (or the embedded one); no broker is started."""
    import psycopg

    from yuncang.embedded import EmbeddedPostgres
    from yuncang.migrations import migrate

    pg = None
    url = s.database_url
    if not url:
        pg = EmbeddedPostgres(s.data_dir / "pg")
        url = pg.start()
    try:
        migrate(url)
        with psycopg.connect(url) as conn:
            yield conn
    finally:
        if pg is not None:
            pg.stop()


def _when(text: str | None) -> datetime | date | None:
    if not text:
        return None
    if len(text) == 10:
        return date.fromisoformat(text)
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the offset, e.g. 2026-06-01T08:00+08:00")
    return t


def _fmt(v: Any) -> str:
    return "" if v is None else v.isoformat(timespec="minutes") if isinstance(v, datetime) else str(v)


def _list(conn: Any, a: argparse.Namespace) -> int:
    from registry.devices import get_device, history, list_devices

    if a.history:
        get_device(conn, a.history)
        for h in history(conn, a.history):
            place = f"orchard {h['orchard_id']}" if h["orchard_id"] else f"cold room {h['cold_room_id']}"
            print(f"{_fmt(h['valid_from']) or '-inf':>22} .. {_fmt(h['valid_to']) or 'now':<22} {place}")
        return 0
    rows, total = list_devices(conn, orchard_id=a.orchard, cold_room_id=a.cold_room, include_retired=a.all,
                               limit=a.limit)
    for r in rows:
        place = r["orchard_id"] or (f"room:{r['cold_room_id']}" if r["cold_room_id"] else "-")
        depth = f"{r['depth_cm']}cm" if r["depth_cm"] is not None else ""
        print(f"{r['device_id']:16} {r['kind']:15} {r['model']:14} {place:14} {depth:6} {r['status']:8} "
              f"{r['dev_eui'] or ''}")
    print(f"{len(rows)} of {total} device(s)", file=sys.stderr)
    return 0


def _add(conn: Any, a: argparse.Namespace) -> int:
    from registry.devices import add_device

    d = add_device(conn, device_id=a.device_id, kind=a.kind, model=a.model, profile=a.profile,
                   dev_eui=a.dev_eui.lower() if a.dev_eui else None, access_token_id=a.access_token_id,
                   orchard_id=a.orchard, cold_room_id=a.cold_room, depth_cm=a.depth_cm, position=a.position,
                   installed_at=_when(a.installed), status="spare" if a.spare else "active", note=a.note)
    print(f"device {d['device_id']} added ({d['kind']}, {d['orchard_id'] or d['cold_room_id'] or 'in stock'})")
    return 0


def _import(conn: Any, a: argparse.Namespace) -> int:
    from registry.csv_io import CsvImportError
    from registry.devices_csv import import_devices

    text = Path(a.file).read_text(encoding="utf-8-sig") if a.file != "-" else sys.stdin.read()
    try:
        added, updated = import_devices(conn, text)
    except CsvImportError as exc:
        print(f"nothing imported: {len(exc.errors)} bad row(s)", file=sys.stderr)
        for e in exc.errors:
            print(f"  {e}", file=sys.stderr)
        return 2
    print(f"imported devices: {added} added, {updated} updated")
    return 0


def _export(conn: Any, a: argparse.Namespace) -> int:
    from registry.devices_csv import export_devices

    if a.file == "-":
        n = export_devices(conn, sys.stdout)
    else:
        with open(a.file, "w", encoding="utf-8", newline="") as out:
            n = export_devices(conn, out)
    print(f"exported {n} devices", file=sys.stderr)
    return 0


def _move(conn: Any, a: argparse.Namespace) -> int:
    from registry.devices import move_device

    d = move_device(conn, a.device_id, orchard_id=a.orchard, cold_room_id=a.cold_room, at=_when(a.at))
    print(f"device {d['device_id']} is now in {d['orchard_id'] or 'cold room ' + str(d['cold_room_id'])}; "
          "regenerate the broker files (`yuncang devices credentials files`) so its topic follows")
    return 0


def _retire(conn: Any, a: argparse.Namespace) -> int:
    from registry.devices import retire_device

    d = retire_device(conn, a.device_id, at=_when(a.at), replaced_by=a.replaced_by)
    print(f"device {d['device_id']} retired at {_fmt(d['retired_at'])}; its broker account is revoked")
    return 0


def _write_private(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_broker_files(conn: Any, out_dir: Path, prefix: str, *, tts_topics: tuple[str, ...] | None = None,
                       tb_gateway_mount: str | None = None) -> tuple[list[Path], int]:
    """Render the live accounts into ``out_dir`` (each file replaced atomically): ``dynamic-security.json``
    for Mosquitto's dynamic-security plugin, ``thingsboard-listeners.conf`` (a listener with its mount point
    per ThingsBoard gateway account; deploy/mosquitto.conf includes the directory), ``passwd`` + ``acl``
    (Mosquitto file formats) for the embedded broker. Ingest's read filters are the ones it subscribes to
    with the same settings (:func:`ingest.decode.topic_filters`)."""
    from ingest.decode import TTS_TOPICS, topic_filters
    from registry.broker_accounts import (
        TB_GATEWAY_MOUNT,
        TopicPlan,
        live_accounts,
        render_acl_file,
        render_dynsec_json,
        render_listeners_conf,
        render_password_file,
    )

    accounts = live_accounts(conn)
    mount = tb_gateway_mount or TB_GATEWAY_MOUNT
    plan = TopicPlan(prefix, topic_filters(TTS_TOPICS if tts_topics is None else tts_topics, mount), mount)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"dynamic-security.json": (render_dynsec_json(accounts, plan), 0o640),
             "thingsboard-listeners.conf": (render_listeners_conf(accounts, plan), 0o644),
             "passwd": (render_password_file(accounts), 0o640), "acl": (render_acl_file(accounts, plan), 0o644)}
    for name, (text, mode) in files.items():
        _write_private(out_dir / name, text, mode)
    return [out_dir / n for n in files], len(accounts)


def _credentials(conn: Any, a: argparse.Namespace, s: Settings) -> int:
    from registry import broker_accounts as ba

    if a.cred_action == "list":
        for r in ba.live_accounts(conn):
            port = f"  listener port {r['listener_port']}" if r.get("listener_port") else ""
            print(f"{r['username']:24} {r['kind']:20} {r['device_id'] or '':16} {_fmt(r['issued_at'])}{port}")
        return 0
    if a.cred_action == "revoke":
        if not ba.revoke(conn, a.username):
            print(f"no live account {a.username!r}", file=sys.stderr)
            return 2
        print(f"account {a.username} revoked; regenerate the broker files")
        return 0
    if a.cred_action == "files":
        out = Path(a.out) if a.out else (s.data_dir / "broker" if not s.mqtt_url else None)
        if out is None:
            print("give --out DIR (the directory Mosquitto's password_file and acl_file are read from)",
                  file=sys.stderr)
            return 2
        prefix = s.mqtt_topic_prefix if a.prefix is None else a.prefix
        opts = ingest_profile_options(s)
        paths, n = write_broker_files(conn, out, prefix, tts_topics=opts["tts_topics"],
                                      tb_gateway_mount=opts["tb_gateway_mount"])
        print(f"wrote {', '.join(map(str, paths))} ({n} accounts); restart Mosquitto to load them (its "
              "persistence keeps queued messages); the embedded broker re-reads them on its next connection")
        plan = ba.TopicPlan(prefix=prefix, ingest_filters=(), tb_gateway_mount=opts["tb_gateway_mount"])
        for r in ba.live_accounts(conn):
            if r["kind"] in ba.LISTENER_KINDS and r.get("listener_port"):
                what = "gateway" if r["kind"] == "thingsboard_gateway" else "device-API device"
                print(f"ThingsBoard {what} {r['username']}: connect its MQTT client to port {r['listener_port']}"
                      f" (mount point {plan.listener_mount_point(r)})")
        return 0
    # issue
    kind: str | None = None
    if a.gateways:
        issued = ba.issue_gateways(conn, orchard_id=a.orchard, rekey=a.rekey)
    elif a.username:
        kind = a.kind or ("gateway" if a.device else None)
        if kind is None:
            print("give --kind (" + ", ".join(ba.KINDS) + ")", file=sys.stderr)
            return 2
        issued = [(a.username, ba.issue(conn, a.username, kind, device_id=a.device, listener_port=a.port))]
    else:
        print("give a USERNAME (with --kind) or --gateways", file=sys.stderr)
        return 2
    print(f"{len(issued)} account(s) issued; the passwords are shown only now — store them in the devices",
          file=sys.stderr)
    for user, password in issued:
        print(f"{user},{password}")
    if kind in ba.LISTENER_KINDS:
        port = conn.execute("SELECT listener_port FROM broker_accounts WHERE username = %s", (a.username,)).fetchone()
        what = "gateway" if kind == "thingsboard_gateway" else "device-API device"
        print(f"ThingsBoard {what} {a.username} connects to its own listener, port {port[0]}: run `credentials"
              " files` and restart Mosquitto to open it", file=sys.stderr)
    return 0


def _run(a: argparse.Namespace, s: Settings) -> int:
    from registry.broker_accounts import AccountError
    from registry.devices import DeviceError

    handlers = {"list": _list, "add": _add, "import": _import, "export": _export, "move": _move,
                "retire": _retire}
    with _database(s) as conn:
        try:
            if a.action == "credentials":
                return _credentials(conn, a, s)
            return handlers[a.action](conn, a)
        except (DeviceError, AccountError) as exc:
            print(f"not done: {exc}", file=sys.stderr)
            return 2


def _place(p: argparse.ArgumentParser, required: bool = False) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--orchard", help="orchard_id the device is in")
    g.add_argument("--cold-room", help="cold_room_id the device is in")


def register(sub: Any) -> None:
    from registry.broker_accounts import KINDS as ACCOUNT_KINDS
    from registry.devices import KINDS

    p = sub.add_parser("devices", help="the device fleet (add/import/export/list/move/retire) and broker credentials")
    dsub = p.add_subparsers(dest="action", required=True)
    p.set_defaults(func=_run)

    ls = dsub.add_parser("list", help="devices with their place, depth and status")
    _place(ls)
    ls.add_argument("--all", action="store_true", help="include retired devices")
    ls.add_argument("--limit", type=int, default=1000)
    ls.add_argument("--history", metavar="DEVICE_ID", help="where this device was when")

    ad = dsub.add_parser("add", help="register one device")
    ad.add_argument("device_id")
    ad.add_argument("--model", required=True, help="vendor model, e.g. LSE01, EM500-SMTC, YC-GW1")
    ad.add_argument("--kind", default="gateway", choices=KINDS)
    ad.add_argument("--profile", help="device profile name (how its payload maps to metrics)")
    ad.add_argument("--dev-eui", help="LoRaWAN DevEUI, 16 hex digits")
    ad.add_argument("--access-token-id", help="ThingsBoard access-token id (not the secret)")
    _place(ad)
    ad.add_argument("--depth-cm", type=int, help="soil probe depth, cm")
    ad.add_argument("--position", default="", help="where in the orchard / room, free text")
    ad.add_argument("--installed", help="installation date or date-time with offset (default now)")
    ad.add_argument("--spare", action="store_true", help="in stock, not yet installed")
    ad.add_argument("--note", default="")

    im = dsub.add_parser("import", help="add/update many devices from CSV (nothing imported if any row is bad)")
    im.add_argument("file", help="CSV path or - for stdin")
    ex = dsub.add_parser("export", help="every device as CSV (the import format)")
    ex.add_argument("file", help="CSV path or - for stdout")

    mv = dsub.add_parser("move", help="move a device to another orchard or cold room (history is kept)")
    mv.add_argument("device_id")
    _place(mv, required=True)
    mv.add_argument("--at", help="when it moved (date or date-time with offset; default now)")

    rt = dsub.add_parser("retire", help="take a device out of service (its history stays)")
    rt.add_argument("device_id")
    rt.add_argument("--at", help="when (default now)")
    rt.add_argument("--replaced-by", help="device_id of its replacement")

    cr = dsub.add_parser("credentials", help="broker accounts: issue, revoke, list, write Mosquitto files")
    csub = cr.add_subparsers(dest="cred_action", required=True)
    iss = csub.add_parser("issue", help="issue (or re-key) accounts; passwords are printed once")
    iss.add_argument("username", nargs="?", help="account name (a gateway's is its device_id)")
    iss.add_argument("--kind", choices=ACCOUNT_KINDS)
    iss.add_argument("--device", help="device_id the account belongs to")
    iss.add_argument("--gateways", action="store_true", help="every active native gateway without an account")
    iss.add_argument("--orchard", help="with --gateways: only this orchard's")
    iss.add_argument("--rekey", action="store_true", help="with --gateways: new passwords for all of them")
    iss.add_argument("--port", type=int, help="thingsboard_gateway/_device: its own listener's TCP port"
                     " (default: the one it has, else the lowest free one from 18831)")
    rv = csub.add_parser("revoke", help="revoke an account")
    rv.add_argument("username")
    csub.add_parser("list", help="live accounts")
    fl = csub.add_parser("files", help="write dynamic-security.json, thingsboard-listeners.conf, passwd and acl")
    fl.add_argument("--out", help="directory (default: the embedded broker's, when no YUNCANG_MQTT_URL is set)")
    fl.add_argument("--prefix", default=None, help="topic prefix (default YUNCANG_MQTT_TOPIC_PREFIX)")
