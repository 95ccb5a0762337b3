"""The client's address for throttling: the TCP peer, unless the peer is a configured trusted proxy.

``X-Forwarded-For`` is a header anyone can send; it is believed only from the proxies listed in
``YUNCANG_TRUSTED_PROXIES`` (addresses or CIDR networks, comma-separated; default: none, so the peer
address is used as is). Behind a trusted proxy the client is the right-most address in the header that
is not itself a trusted proxy (each proxy appends the address it received the request from), so a client
cannot choose its address by writing the header itself. uvicorn's own proxy-header handling is switched
off (``proxy_headers=False``) so that this is the one rule.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def parse_trusted(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.5, 172.28.0.0/24"`` -> networks; raises ValueError for a malformed entry."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def in_networks(addr: str, nets: tuple[Network, ...]) -> bool:
    """Whether ``addr`` (an IP address; anything else is not) lies in one of ``nets``."""
    try:
        ip = ipaddress.ip_address(addr.strip())
    except ValueError:
        return False
    return any(ip in n for n in nets)


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The address to throttle by. ``forwarded_for``: every ``X-Forwarded-For`` header value, in order."""
    addr = peer or "unknown"
    if not trusted or not in_networks(addr, trusted):
        return addr
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not in_networks(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return addr  # garbage from the client: fall back to the proxy's own address
    return addr
