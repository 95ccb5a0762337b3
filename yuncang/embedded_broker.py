"""Child-process entry point of the embedded amqtt broker: ``python -m yuncang.embedded_broker``.

The broker is closed like the production Mosquitto: a client must present a username and password
found in the Mosquitto-format ``password_file``\\ s of ``--auth-dir`` and may publish, subscribe and
receive only what the matching ``acl_file``\\ s allow (:mod:`yuncang.broker_acl`). The directory holds
``service.passwd``/``service.acl`` (the product's own in-process account, written by the parent,
:class:`yuncang.embedded.EmbeddedBroker`) and ``passwd``/``acl`` (the accounts yuncang issued, written
by ``yuncang devices credentials files``; re-read when they change, no restart needed).
Every client has a username, which amqtt also needs before it keeps a persistent session.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from yuncang import broker_acl

#: (password_file, acl_file) names inside the auth directory, in load order
AUTH_FILES: tuple[tuple[str, str], ...] = (("service.passwd", "service.acl"), ("passwd", "acl"))


class _Store:
    """The rules of one auth directory, re-read when a file's modification time changes."""

    def __init__(self, auth_dir: Path):
        self.pairs = [(auth_dir / pw, auth_dir / acl) for pw, acl in AUTH_FILES]
        self._stamp: tuple[float, ...] = ()
        self.rules = broker_acl.Rules()

    def current(self) -> broker_acl.Rules:
        stamp = tuple(p.stat().st_mtime if p.exists() else -1.0 for pair in self.pairs for p in pair)
        if stamp != self._stamp:
            try:
                self.rules = broker_acl.load(self.pairs)
                self._stamp = stamp
            except (OSError, broker_acl.AclFileError):
                logging.getLogger(__name__).exception("broker auth files unreadable; keeping the previous rules")
        return self.rules


_STORES: dict[str, _Store] = {}


def _store(auth_dir: str) -> _Store:
    if auth_dir not in _STORES:
        _STORES[auth_dir] = _Store(Path(auth_dir))
    return _STORES[auth_dir]


class FileAuthPlugin(BaseAuthPlugin):
    """CONNECT: username and password must match a ``$7$`` hash of the auth directory's password files."""

    @dataclass
    class Config:
        auth_dir: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.store = _store(self.config.auth_dir)

    async def authenticate(self, *, session: Session) -> bool | None:
        return self.store.current().authenticate(session.username, session.password)


class FileAclPlugin(BaseTopicPlugin):
    """PUBLISH / SUBSCRIBE / delivery checked against the auth directory's acl files."""

    @dataclass
    class Config:
        auth_dir: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.store = _store(self.config.auth_dir)

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        if session is None or not topic or not session.username:
            return False
        rules = self.store.rules  # authenticate() refreshed them at CONNECT
        user, cid = session.username, session.client_id or ""
        if action == Action.PUBLISH:
            return rules.may_publish(user, cid, topic)
        if action == Action.SUBSCRIBE:
            return rules.may_subscribe(user, cid, topic)
        if action == Action.RECEIVE:
            return rules.may_receive(user, cid, topic)
        return False


def config(host: str, port: int, auth_dir: str) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 10000}},
        "plugins": {
            "yuncang.embedded_broker.FileAuthPlugin": {"auth_dir": auth_dir},
            "yuncang.embedded_broker.FileAclPlugin": {"auth_dir": auth_dir},
        },
    }


async def _run(host: str, port: int, auth_dir: str) -> None:
    broker = Broker(config(host, port, auth_dir))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # connections cut by the shutdown end in CancelledError inside amqtt's handlers; that is the
    # shutdown working, not an error worth a traceback on the console
    loop.set_exception_handler(lambda _loop, _ctx: None)
    await broker.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--auth-dir", required=True, help="directory with the password and acl files")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # the parent probes the port with a bare TCP connect; amqtt logs that as an error
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    asyncio.run(_run(a.host, a.port, str(Path(a.auth_dir).absolute())))


if __name__ == "__main__":
    main()
