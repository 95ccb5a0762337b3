"""Mosquitto's ``password_file`` + ``acl_file`` read and enforced in Python, for the embedded amqtt broker.

The same generated files (:mod:`registry.broker_accounts`) then bind both brokers. Semantics follow
Mosquitto 2.0's file-based checks, for the subset yuncang writes (``user`` blocks of ``topic
read|write|readwrite <topic>`` lines; ``pattern`` lines with ``%u``/``%c`` are understood too):

* publish: allowed when a write pattern *matches* the topic (MQTT wildcard match);
* subscribe: a ``$share/<group>/`` prefix is removed, then the filter must be *covered* by a read
  pattern — every topic it can match is readable — so ``#`` is refused to an account that may read
  only ``orchards/+/+/up``;
* delivery: each message is checked again against the receiver's read patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from registry.broker_accounts import verify_password

_ACCESS = {"read": (True, False), "write": (False, True), "readwrite": (True, True)}


class AclFileError(ValueError):
    """A line of an acl/password file yuncang cannot read; the message names file and line."""


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic-filter match (``+`` one level, ``#`` the rest, including the parent level)."""
    p, t = pattern.split("/"), topic.split("/")
    if t[0].startswith("$") and p[0] in ("+", "#"):
        return False  # [MQTT-4.7.2-1]: wildcards at the first level do not match $-topics
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(p) == len(t)


def filter_covered(pattern: str, sub: str) -> bool:
    """True when every topic the subscription filter ``sub`` can match is matched by ``pattern``."""
    p, s = pattern.split("/"), sub.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(s):
            return False
        if level == "+":
            if s[i] == "#":
                return False
            continue
        if s[i] != level:
            return False
    return len(p) == len(s)


def strip_share(sub: str) -> str:
    """``$share/<group>/<filter>`` -> ``<filter>``; other filters unchanged."""
    if sub.startswith("$share/"):
        parts = sub.split("/", 2)
        return parts[2] if len(parts) == 3 else ""
    return sub


@dataclass
class Rules:
    """Users (password hashes) and their read/write patterns."""

    hashes: dict[str, str] = field(default_factory=dict)
    reads: dict[str, list[str]] = field(default_factory=dict)
    writes: dict[str, list[str]] = field(default_factory=dict)
    patterns: list[tuple[bool, bool, str]] = field(default_factory=list)  #: (read, write, pattern) for all

    def authenticate(self, username: str | None, password: str | None) -> bool:
        h = self.hashes.get(username or "")
        return h is not None and verify_password(password or "", h)

    def _own(self, user: str, client_id: str, want_read: bool) -> list[str]:
        own = list((self.reads if want_read else self.writes).get(user, []))
        for r, w, pat in self.patterns:
            if (r if want_read else w):
                own.append(pat.replace("%u", user).replace("%c", client_id))
        return own

    def may_publish(self, user: str, client_id: str, topic: str) -> bool:
        return any(topic_matches(p, topic) for p in self._own(user, client_id, False))

    def may_subscribe(self, user: str, client_id: str, sub: str) -> bool:
        f = strip_share(sub)
        return bool(f) and any(filter_covered(p, f) for p in self._own(user, client_id, True))

    def may_receive(self, user: str, client_id: str, topic: str) -> bool:
        return any(topic_matches(p, topic) for p in self._own(user, client_id, True))


def read_password_file(path: Path, rules: Rules) -> None:
    for n, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, h = line.partition(":")
        if not sep or not user or not h.startswith("$7$"):
            raise AclFileError(f"{path}:{n}: expected username:$7$... (mosquitto_passwd format)")
        rules.hashes[user] = h


def read_acl_file(path: Path, rules: Rules) -> None:
    user: str | None = None
    for n, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "user":
            user = rest
            continue
        if word not in ("topic", "pattern"):
            raise AclFileError(f"{path}:{n}: unknown directive {word!r}")
        access, _, topic = rest.partition(" ")
        if access not in _ACCESS:
            access, topic = "readwrite", rest
        topic = topic.strip()
        if not topic:
            raise AclFileError(f"{path}:{n}: no topic")
        r, w = _ACCESS[access]
        if word == "pattern":
            rules.patterns.append((r, w, topic))
        elif user is not None:  # topic lines before any 'user' are for anonymous clients: refused here
            if r:
                rules.reads.setdefault(user, []).append(topic)
            if w:
                rules.writes.setdefault(user, []).append(topic)


def load(pairs: list[tuple[Path, Path]]) -> Rules:
    """Rules from (password_file, acl_file) pairs; a missing file counts as empty."""
    rules = Rules()
    for pw, acl in pairs:
        if pw.exists():
            read_password_file(pw, rules)
        if acl.exists():
            read_acl_file(acl, rules)
    return rules
