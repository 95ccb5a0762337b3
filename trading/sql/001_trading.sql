-- Trading: buyers, forward orders, allocation runs, the cloud warehouse (cold rooms, lots, shipments),
-- quality (certifications, supplier blacklist), settlement rules and notifications.
-- Forecast tables (forecast_runs, forecasts) belong to orchard_models; allocation runs keep the
-- forecast run id as text without a foreign key so forecasts can be pruned independently.

CREATE TABLE buyers (
    buyer_id     text PRIMARY KEY,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('supermarket', 'state_eshop', 'ecommerce', 'processor',
                                               'institutional')),
    city         text NOT NULL DEFAULT '',
    contact      text NOT NULL DEFAULT '',
    phone        text,
    emergency_channel boolean NOT NULL DEFAULT false,  -- absorbs gluts on request (以购代捐, 应急渠道)
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    order_id        text PRIMARY KEY,                  -- 'ORD-2026-000123'
    buyer_id        text NOT NULL REFERENCES buyers,
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,                     -- sha256 of the canonical request body
    season          integer NOT NULL,
    grade           text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    quantity_kg     numeric(14, 3) NOT NULL CHECK (quantity_kg > 0),
    week_from       date NOT NULL CHECK (extract(isodow FROM week_from) = 1),
    week_to         date NOT NULL CHECK (extract(isodow FROM week_to) = 1),
    destination     text NOT NULL,
    price_fen_per_kg integer NOT NULL CHECK (price_fen_per_kg >= 0),
    floor_price_fen_per_kg integer CHECK (floor_price_fen_per_kg >= 0),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'allocated', 'fulfilled', 'cancelled')),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    seq             bigserial,                         -- time priority
    CHECK (week_to >= week_from),
    CHECK (floor_price_fen_per_kg IS NULL OR floor_price_fen_per_kg <= price_fen_per_kg),
    UNIQUE (buyer_id, idempotency_key)
);
CREATE INDEX orders_season_idx ON orders (season, status);
CREATE INDEX orders_buyer_idx ON orders (buyer_id, created_at DESC);

CREATE TABLE warehouses (
    warehouse_id text PRIMARY KEY,
    name         text NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL
);

CREATE TABLE cold_rooms (
    cold_room_id  text PRIMARY KEY,
    warehouse_id  text NOT NULL REFERENCES warehouses,
    name          text NOT NULL,
    capacity_kg   numeric(14, 3) NOT NULL CHECK (capacity_kg > 0),
    temperature_c numeric(4, 1) NOT NULL DEFAULT 1.0,  -- set point, °C
    active        boolean NOT NULL DEFAULT true
);

CREATE TABLE allocation_runs (
    alloc_run_id     bigserial PRIMARY KEY,
    season           integer NOT NULL,
    forecast_run_id  text NOT NULL,
    confidence       text NOT NULL CHECK (confidence IN ('p10', 'p50', 'p90')),
    previous_run_id  bigint REFERENCES allocation_runs,
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    requested_kg     numeric(16, 3) NOT NULL,
    committed_kg     numeric(16, 3) NOT NULL,
    expected_kg      numeric(16, 3) NOT NULL,
    value_fen        bigint NOT NULL,                  -- order value minus transport and storage cost
    poor_share       double precision NOT NULL,        -- share of committed kg from 脱贫户 orchards
    stats            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX allocation_runs_season_idx ON allocation_runs (season, alloc_run_id DESC);

CREATE TABLE allocations (
    alloc_run_id   bigint NOT NULL REFERENCES allocation_runs ON DELETE CASCADE,
    order_id       text NOT NULL REFERENCES orders,
    orchard_id     text NOT NULL REFERENCES orchards,
    harvest_week   date NOT NULL,
    delivery_week  date NOT NULL,
    grade          text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),   -- grade supplied
    kg             numeric(14, 3) NOT NULL CHECK (kg > 0),
    status         text NOT NULL CHECK (status IN ('committed', 'expected')),
    PRIMARY KEY (alloc_run_id, order_id, orchard_id, harvest_week, delivery_week, grade, status)
);
CREATE INDEX allocations_orchard_idx ON allocations (orchard_id, alloc_run_id);
CREATE INDEX allocations_order_idx ON allocations (order_id, alloc_run_id);

CREATE TABLE allocation_orders (
    alloc_run_id  bigint NOT NULL REFERENCES allocation_runs ON DELETE CASCADE,
    order_id      text NOT NULL REFERENCES orders,
    requested_kg  numeric(14, 3) NOT NULL,
    committed_kg  numeric(14, 3) NOT NULL,
    expected_kg   numeric(14, 3) NOT NULL,
    shortfall_kg  numeric(14, 3) NOT NULL,
    reason        text NOT NULL DEFAULT '',
    PRIMARY KEY (alloc_run_id, order_id)
);
CREATE INDEX allocation_orders_order_idx ON allocation_orders (order_id, alloc_run_id DESC);

CREATE TABLE trading_notifications (
    notification_id bigserial PRIMARY KEY,
    recipient_kind  text NOT NULL CHECK (recipient_kind IN ('buyer', 'grower')),
    recipient_id    text NOT NULL,
    kind            text NOT NULL,          -- 'allocation_new', 'allocation_changed', ...
    alloc_run_id    bigint REFERENCES allocation_runs ON DELETE CASCADE,
    order_id        text REFERENCES orders,
    orchard_id      text REFERENCES orchards,
    message_zh      text NOT NULL,
    message_en      text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz
);
CREATE INDEX trading_notifications_recipient_idx
    ON trading_notifications (recipient_kind, recipient_id, created_at DESC);

-- Supplier blacklist (黑名单): an active entry removes the subject's fruit from allocation and shipping.
CREATE TABLE supplier_blacklist (
    entry_id     bigserial PRIMARY KEY,
    subject_kind text NOT NULL CHECK (subject_kind IN ('orchard', 'grower', 'cooperative')),
    subject_id   text NOT NULL,
    reason       text NOT NULL,
    listed_at    timestamptz NOT NULL DEFAULT now(),
    lifted_at    timestamptz
);
CREATE UNIQUE INDEX supplier_blacklist_active_idx ON supplier_blacklist (subject_kind, subject_id)
    WHERE lifted_at IS NULL;

-- Product certification (county quality certification, green food, GI...), published periodically.
CREATE TABLE certifications (
    cert_id        bigserial PRIMARY KEY,
    subject_kind   text NOT NULL CHECK (subject_kind IN ('orchard', 'grower', 'cooperative')),
    subject_id     text NOT NULL,
    scheme         text NOT NULL,
    certificate_no text NOT NULL UNIQUE,
    issued_on      date NOT NULL,
    valid_until    date NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    CHECK (valid_until >= issued_on)
);
CREATE INDEX certifications_subject_idx ON certifications (subject_kind, subject_id);

CREATE TABLE lots (
    lot_id        text PRIMARY KEY,                 -- 'LOT-2026-000001'
    orchard_id    text NOT NULL REFERENCES orchards,
    season        integer NOT NULL,
    harvested_on  date NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    cold_room_id  text NOT NULL REFERENCES cold_rooms
);
CREATE INDEX lots_orchard_idx ON lots (orchard_id, season);
CREATE INDEX lots_room_idx ON lots (cold_room_id);

CREATE TABLE lot_grades (
    lot_id        text NOT NULL REFERENCES lots ON DELETE CASCADE,
    grade         text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    received_kg   numeric(14, 3) NOT NULL CHECK (received_kg > 0),
    remaining_kg  numeric(14, 3) NOT NULL CHECK (remaining_kg >= 0),   -- stock never negative
    CHECK (remaining_kg <= received_kg),
    PRIMARY KEY (lot_id, grade)
);

CREATE TABLE shipments (
    shipment_id      bigserial PRIMARY KEY,
    trace_code       text NOT NULL UNIQUE,
    order_id         text NOT NULL REFERENCES orders,
    lot_id           text NOT NULL REFERENCES lots,
    grade            text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    kg               numeric(14, 3) NOT NULL CHECK (kg > 0),
    price_fen_per_kg integer NOT NULL,            -- price paid (order price, never under its floor)
    amount_fen       bigint NOT NULL,
    shipped_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipments_order_idx ON shipments (order_id);
CREATE INDEX shipments_lot_idx ON shipments (lot_id);

-- Payment rules as data (利益联结). cooperative_id NULL = the default for every cooperative.
CREATE TABLE settlement_rules (
    rule_set_id        text PRIMARY KEY,
    cooperative_id     text REFERENCES cooperatives,
    name               text NOT NULL,
    valid_from_season  integer NOT NULL,
    management_fee_fen_per_plant_year integer NOT NULL CHECK (management_fee_fen_per_plant_year >= 0),
    picking_fee_fen_per_jin integer NOT NULL CHECK (picking_fee_fen_per_jin >= 0),
    -- [{"min_jin_per_plant": 0, "rate_bp": 200}, {"min_jin_per_plant": 10, "rate_bp": 300}]; bp = 1/10000
    dividend_tiers     jsonb NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX settlement_rules_scope_idx
    ON settlement_rules (coalesce(cooperative_id, ''), valid_from_season);

-- The reported Wanzhou 四分 model: 4.5 yuan per plant per year, 1.2 yuan per jin picked,
-- revenue dividend 2 % under 10 jin per plant, 3 % at 10 jin or more.
INSERT INTO settlement_rules (rule_set_id, cooperative_id, name, valid_from_season,
                              management_fee_fen_per_plant_year, picking_fee_fen_per_jin, dividend_tiers)
VALUES ('sifen-default', NULL, '四分模式 (default)', 2000, 450, 120,
        '[{"min_jin_per_plant": 0, "rate_bp": 200}, {"min_jin_per_plant": 10, "rate_bp": 300}]');
