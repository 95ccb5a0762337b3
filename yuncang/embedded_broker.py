"""Child-process entry point of the embedded amqtt broker: ``python -m yuncang.embedded_broker``.

Anonymous connections are refused so that every client has a username, which amqtt needs before
it keeps a persistent session (queued QoS 1 messages across reconnects).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from amqtt.broker import Broker


def config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 10000}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
        },
    }


async def _run(host: str, port: int) -> None:
    broker = Broker(config(host, port))
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
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # the parent probes the port with a bare TCP connect; amqtt logs that as an error
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    asyncio.run(_run(a.host, a.port))


if __name__ == "__main__":
    main()
