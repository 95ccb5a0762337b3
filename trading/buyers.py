"""Buyers (采购商): supermarket zones, state-company e-shops, e-commerce sellers, processors and
institutional buyers (budget units, trade unions: 以购代捐), with a deterministic demo seed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trading.errors import Conflict, Invalid, NotFound
from trading.geo import city

BUYER_KINDS: tuple[str, ...] = ("supermarket", "state_eshop", "ecommerce", "processor", "institutional")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")


@dataclass
class Buyer:
    buyer_id: str
    name: str
    kind: str
    city: str
    contact: str
    phone: str | None
    emergency_channel: bool     #: takes glut volume through the emergency channel (应急收购)
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BuyerPage:
    """One page of buyers; unpacks as ``items, total = list_buyers(...)``."""

    items: list[Buyer]
    total: int

    def __iter__(self) -> Iterator[Any]:
        return iter((self.items, self.total))


_COLS = "buyer_id, name, kind, city, contact, phone, emergency_channel, created_at"


def create_buyer(conn: psycopg.Connection, *, buyer_id: str, name: str, kind: str, city_name: str = "",
                 contact: str = "", phone: str | None = None, emergency_channel: bool | None = None) -> Buyer:
    """Register a buyer. ``Invalid`` for a bad id/kind/city, ``Conflict`` if the id exists."""
    if not _ID.match(buyer_id or ""):
        raise Invalid("buyer_id must be 2-64 letters, digits, '_', '.', '-'", "采购商编号格式不正确",
                      field="buyer_id")
    if kind not in BUYER_KINDS:
        raise Invalid(f"kind must be one of {BUYER_KINDS}", "采购商类型不正确", field="kind")
    if not name.strip():
        raise Invalid("name is required", "名称不能为空", field="name")
    if city_name:
        city_name = city(city_name).key
    if emergency_channel is None:
        emergency_channel = kind == "institutional"
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO buyers (buyer_id, name, kind, city, contact, phone, emergency_channel) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (buyer_id) DO NOTHING RETURNING buyer_id",
            (buyer_id, name.strip(), kind, city_name, contact, phone, emergency_channel),
        ).fetchone()
    if row is None:
        raise Conflict(f"buyer {buyer_id} already exists", f"采购商 {buyer_id} 已存在", buyer_id=buyer_id)
    return get_buyer(conn, buyer_id)


def ensure_buyer(conn: psycopg.Connection, *, buyer_id: str, name: str, kind: str = "supermarket",
                 city_name: str = "", contact: str = "") -> Buyer:
    """The buyer ``buyer_id``, created with these fields when it does not exist yet (idempotent; an
    existing buyer is returned unchanged)."""
    try:
        return get_buyer(conn, buyer_id)
    except NotFound:
        pass
    try:
        return create_buyer(conn, buyer_id=buyer_id, name=name, kind=kind, city_name=city_name, contact=contact)
    except Conflict:          # created concurrently
        return get_buyer(conn, buyer_id)


def get_buyer(conn: psycopg.Connection, buyer_id: str) -> Buyer:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLS} FROM buyers WHERE buyer_id = %s", (buyer_id,)).fetchone()
    if row is None:
        raise NotFound(f"buyer {buyer_id} not found", f"采购商 {buyer_id} 不存在", buyer_id=buyer_id)
    return Buyer(**row)


def list_buyers(conn: psycopg.Connection, *, kind: str | None = None, limit: int = 100,
                offset: int = 0) -> BuyerPage:
    """Buyers ordered by id, optionally of one kind: a :class:`BuyerPage` (``items, total = ...``)."""
    if kind is not None and kind not in BUYER_KINDS:
        raise Invalid(f"kind must be one of {BUYER_KINDS}", "采购商类型不正确", field="kind")
    if not (1 <= limit <= 1000) or offset < 0:
        raise Invalid("limit must be 1-1000 and offset >= 0", "分页参数不正确")
    where, args = ("WHERE kind = %s", [kind]) if kind else ("", [])
    with conn.cursor(row_factory=dict_row) as cur:
        total = cur.execute(f"SELECT count(*) AS n FROM buyers {where}", args).fetchone()["n"]  # type: ignore[index]
        rows = cur.execute(f"SELECT {_COLS} FROM buyers {where} ORDER BY buyer_id LIMIT %s OFFSET %s",
                           [*args, limit, offset]).fetchall()
    return BuyerPage([Buyer(**r) for r in rows], int(total))


#: The demo seed: partners named in the reports, as generic names (not real company records).
SEED_BUYERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("yt-zone-1", "烟台超市巫山脆李专区一 (芝罘)", "supermarket", "yantai", "专区主管"),
    ("yt-zone-2", "烟台超市巫山脆李专区二 (莱山)", "supermarket", "yantai", "专区主管"),
    ("yt-zone-3", "烟台超市巫山脆李专区三 (福山)", "supermarket", "yantai", "专区主管"),
    ("yt-zone-4", "烟台超市巫山脆李专区四 (牟平)", "supermarket", "yantai", "专区主管"),
    ("cq-hall", "重庆巫山特产展销馆", "supermarket", "chongqing", "展馆经理"),
    ("bb-hall", "北碚巫山农特产品馆", "supermarket", "beibei", "展馆经理"),
    ("tl-hall", "铜梁巫山农特产品馆", "supermarket", "tongliang", "展馆经理"),
    ("sanxia-egou", "三峡e购 员工电商平台", "state_eshop", "yichang", "采购部"),
    ("ec-live-1", "巫山脆李直播电商 (果农创办)", "ecommerce", "wushan", "店长"),
    ("ec-shop-2", "渝味生鲜网店", "ecommerce", "chongqing", "店长"),
    ("ec-shop-3", "江南鲜果网店", "ecommerce", "hangzhou", "店长"),
    ("ec-shop-4", "京城果品网店", "ecommerce", "beijing", "店长"),
    ("proc-wushan", "巫山县李子果脯加工厂", "processor", "wushan", "厂长"),
    ("proc-wanzhou", "万州果汁果酒加工厂", "processor", "wanzhou", "厂长"),
    ("inst-cq-union", "重庆市级机关工会 (定向采购)", "institutional", "chongqing", "工会办公室"),
    ("inst-wuhan-units", "武汉对口帮扶预算单位 (以购代捐)", "institutional", "wuhan", "采购办"),
)


def seed_buyers(conn: psycopg.Connection) -> int:
    """Insert the demo buyers (idempotent: existing ids are left alone); returns how many were new."""
    n = 0
    with conn.transaction():
        for bid, name, kind, cty, contact in SEED_BUYERS:
            cur = conn.execute(
                "INSERT INTO buyers (buyer_id, name, kind, city, contact, emergency_channel) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (buyer_id) DO NOTHING",
                (bid, name, kind, cty, contact, kind == "institutional"),
            )
            n += cur.rowcount
    return n
