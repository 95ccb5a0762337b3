"""Forward orders, allocation, warehouse lots, traceability, settlement and unsold-risk warnings.

Python API (every function takes an open ``psycopg.Connection`` first and plain values after; each
write is atomic inside ``conn.transaction()`` — with a non-autocommit connection the caller commits,
as ``pool.connection()`` does on exit). Errors are :mod:`trading.errors`, one HTTP status each:

==========================  ======  ==========================================================
``errors.NotFound``         404     unknown buyer / order / lot / trace code / forecast run
``errors.Conflict``         409     state clash: order already allocated, idempotency key reused
                                    with another body, cold room full, lot short of stock
``errors.Invalid``          422     bad input (grade, non-Monday week, kg <= 0, floor > price ...)
``errors.Forbidden``        403     another buyer's order, a blacklisted supplier's lot
==========================  ======  ==========================================================

``err.message`` (English), ``err.zh`` (Chinese), ``err.detail`` (dict), ``err.to_dict()`` (JSON body).
Units: kg as ``Decimal`` (3 decimals), prices ``int`` fen per kg, money ``int`` fen, weeks by their
Monday (``date``), seasons are years.

Buyers — :mod:`trading.buyers`
    ``create_buyer(conn, *, buyer_id, name, kind, city_name='', contact='', phone=None,
    emergency_channel=None) -> Buyer``; ``ensure_buyer(conn, *, buyer_id, name, kind='supermarket', ...)``
    (idempotent); ``get_buyer(conn, buyer_id) -> Buyer``;
    ``list_buyers(conn, *, kind=None, limit=100, offset=0) -> (list[Buyer], total)``;
    ``seed_buyers(conn) -> int`` (the demo's 16 buyers; idempotent). Kinds: ``BUYER_KINDS``.

Orders — :mod:`trading.orders`
    ``place_order(conn, *, buyer_id, idempotency_key, grade, quantity_kg, week_from, week_to,
    destination, price_fen_per_kg, floor_price_fen_per_kg=None) -> Order`` (same key + same body
    returns the same order; same key + other body -> Conflict);
    ``amend_order(conn, order_id, buyer_id, **changes) -> Order`` and
    ``cancel_order(conn, order_id, buyer_id) -> Order`` while ``status == 'open'`` (Conflict after
    allocation, Forbidden for another buyer); ``get_order(conn, order_id) -> Order`` (with the latest
    run's ``committed_kg``/``expected_kg``/``shortfall_kg`` and ``shipped_kg``);
    ``list_orders(conn, *, buyer_id=None, status=None, season=None, limit=50, offset=0)
    -> (list[Order], total)``; ``crates_to_kg(crates, crate_kg=10)``. Destinations: ``trading.geo.CITIES``
    (key, Chinese or English name).

Allocation — :mod:`trading.allocation` (core LP in :mod:`trading.matching`)
    ``allocate(conn, *, season, run_id=None, confidence='p10', params=MatchParams(...),
    warehouse_id=None, notify=True) -> AllocationResult`` (per-order fills with shortfall and reason,
    the change list, notifications written); ``get_allocations(conn, *, order_id=None,
    orchard_id=None, season=None, alloc_run_id=None, status=None, limit=1000, offset=0) -> list[dict]``;
    ``supply_offer(conn, season, *, run_id=None) -> list[dict]`` (per week and grade: p10/p50/p90,
    committed, expected, offered, firm_offered kg); ``list_allocation_runs(conn, *, season=None)``;
    ``list_notifications(conn, *, recipient_kind, recipient_id, unread_only=False, limit=50)``;
    ``mark_notification_read(conn, notification_id)``.

Warnings — :mod:`trading.warnings`
    ``evaluate_unsold_risk(conn, *, season, as_of, horizon_weeks=3, threshold_kg=20000,
    threshold_share=0.2, raise_alert=True) -> list[Warning]`` (raises/resolves ``unsold_risk`` alerts).

Warehouse — :mod:`trading.warehouse`
    ``seed_warehouse(conn)``; ``create_cold_room(...)``; ``receive_lot(conn, *, orchard_id,
    harvested_on, kg_by_grade, cold_room_id) -> Lot``; ``get_lot(conn, lot_id) -> Lot``;
    ``fulfil(conn, *, order_id, lot_id, grade, kg) -> Shipment`` (unique ``trace_code``);
    ``stock(conn, *, cold_room_id=None) -> list[dict]``.

Quality — :mod:`trading.quality`
    ``blacklist_supplier(conn, *, subject_kind, subject_id, reason)``, ``lift_blacklist``,
    ``list_blacklist``; ``add_certification(...)``, ``revoke_certification``,
    ``certifications_for_orchard(conn, orchard_id, on=None)``.

Trace — :mod:`trading.trace`
    ``resolve_trace(conn, code, *, public=True) -> dict`` (lot, orchard, harvest date, masked grower,
    certifications, season sensor summary from ``readings_daily``, risk events from ``alerts``).

Settlement — :mod:`trading.settlement`
    ``statements(conn, *, season, cooperative_id=None, grower_id=None) -> StatementReport``
    (``.statements`` per grower, ``.totals``, ``.poverty_alleviated``; integer fen);
    ``save_rule_set(...)``; ``rule_set_for(conn, cooperative_id, season)``; ``compute_statement(...)``.

Stock, spot sales and papers (issue 17) — :mod:`trading.stock`, :mod:`trading.spot`, :mod:`trading.papers`
    One stock for every channel: ``lot_grades`` rows (remaining, reserved) taken only through
    ``stock.lock_rows`` + conditional updates. ``spot.stock_offer``, ``set_list_price``, ``reserve`` ->
    ``confirm`` -> ``deliver`` (or ``cancel``; holds expire: ``expire_holds``), ``make_offer`` /
    ``decide_offer``, ``hall_sale``, ``record_loss``, ``grant_hall_staff`` / ``is_hall_staff``; all writes
    idempotent on ``client_request_id``. ``papers.spot_delivery_note`` / ``shipment_delivery_note`` /
    ``buyer_statement`` -> ``to_pdf`` / ``to_xlsx``.

Glut channel — :mod:`trading.glut`
    ``open_offer`` (from an unsold-risk warning, floor price), ``accept_offer`` (institutional buyers, one
    action -> a forward order), ``plan_after_acceptance`` (allocate + re-evaluate), ``set_pledge``,
    ``partner_report``.

Sites — :mod:`trading.sites`
    ``seed_sites`` (4 demo origin warehouses), ``save_site``, ``list_sites``, ``planned_site``,
    ``cold_room_for``, road-distance cost matrices; ``allocation.allocate`` uses every active site.

Demo data — :mod:`trading.demo`
    ``seed_demo(conn, *, season, orders=120) -> dict``: buyers, warehouse and forward orders.
"""
