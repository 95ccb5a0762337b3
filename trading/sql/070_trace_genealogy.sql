-- Lot genealogy (批次谱系): every physical step from the orchard to the buyer as an event with time,
-- place and quantities in and out, exportable as GS1 EPCIS 2.0 (trading/epcis.py).
--
--   harvest lot (采收批次, one orchard, one picking day)
--     -> graded lots (分级批次, one grade each; grading is a transformation with recorded losses)
--     -> packed units (包装件: crates/cartons, one SSCC each; packing is an aggregation)
--     -> shipment lots (发货批次: several small family-orchard lots may be merged into one)
--     -> shipped to a buyer.
--
-- Mass balance (kg) holds at every step: kg in = kg out + loss, each loss with a reason. It is checked
-- by trading.genealogy in the transaction that records the step; remaining_kg >= 0 backs it here, so a
-- lot can never be consumed twice (a conditional UPDATE ... WHERE remaining_kg >= x takes the kg).

CREATE TABLE trace_objects (
    object_id     text PRIMARY KEY,                  -- 'HL-...', 'GL-...', 'PU-...', 'SL-...'
    kind          text NOT NULL CHECK (kind IN ('harvest_lot', 'graded_lot', 'packed_unit', 'shipment_lot')),
    lot_number    text NOT NULL,                     -- GS1 AI (10) value (the object id itself)
    gtin          text NOT NULL,                     -- GTIN-14 of the grade (ungraded plums for harvest lots)
    sscc          text UNIQUE,                       -- packed units only (AI 00)
    grade         text CHECK (grade IN ('XL', 'L', 'M')),
    orchard_id    text REFERENCES orchards,          -- harvest lots only
    township_id   text REFERENCES townships,         -- origin township (public origin, never a person)
    harvested_on  date,                              -- harvest lots only (Asia/Shanghai day)
    kg            numeric(14, 3) NOT NULL CHECK (kg > 0),
    remaining_kg  numeric(14, 3) NOT NULL CHECK (remaining_kg >= 0),
    created_at    timestamptz NOT NULL,
    location_id   text NOT NULL,                     -- where it is now: township, site or cold room
    warehouse_lot text REFERENCES lots,              -- the warehouse lot (lots/lot_grades) it is kept as, if any
    CHECK (remaining_kg <= kg),
    CHECK ((kind = 'harvest_lot') = (orchard_id IS NOT NULL)),
    CHECK ((kind = 'packed_unit') = (sscc IS NOT NULL))
);
-- serial references of SSCCs (packed units), never reused
CREATE SEQUENCE trace_sscc_serial;

CREATE INDEX trace_objects_orchard_idx ON trace_objects (orchard_id, harvested_on) WHERE orchard_id IS NOT NULL;
CREATE UNIQUE INDEX trace_objects_gtin_lot_idx ON trace_objects (gtin, lot_number);
CREATE UNIQUE INDEX trace_objects_warehouse_lot_idx ON trace_objects (warehouse_lot, kind, grade)
    WHERE warehouse_lot IS NOT NULL;

CREATE TABLE trace_events (
    event_id        text PRIMARY KEY,               -- urn:uuid:...
    event_type      text NOT NULL CHECK (event_type IN ('ObjectEvent', 'TransformationEvent', 'AggregationEvent')),
    action          text CHECK (action IN ('ADD', 'OBSERVE', 'DELETE')),
    biz_step        text NOT NULL,                  -- CBV 2.0 business step (commissioning, receiving, ...)
    disposition     text,                           -- CBV 2.0 disposition (active, in_progress, in_transit)
    event_time      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    location_id     text NOT NULL,                  -- readPoint / bizLocation: township, site or cold room id
    parent_id       text REFERENCES trace_objects,  -- AggregationEvent: the packed unit
    idempotency_key text UNIQUE,                    -- a retried step is recorded once
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb   -- buyer/order/destination, ILMD, sensor report
);
CREATE INDEX trace_events_time_idx ON trace_events (event_time);

-- The objects an event names and their kg: 'object' (ObjectEvent), 'input'/'output' (transformation),
-- 'child' (aggregation: the lots packed into parent_id).
CREATE TABLE trace_event_items (
    event_id   text NOT NULL REFERENCES trace_events ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('object', 'input', 'output', 'child')),
    object_id  text NOT NULL REFERENCES trace_objects,
    kg         numeric(14, 3) NOT NULL CHECK (kg >= 0),
    PRIMARY KEY (event_id, role, object_id)
);
CREATE INDEX trace_event_items_object_idx ON trace_event_items (object_id);

CREATE TABLE trace_losses (
    event_id  text NOT NULL REFERENCES trace_events ON DELETE CASCADE,
    kg        numeric(14, 3) NOT NULL CHECK (kg > 0),
    reason    text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200)
);
CREATE INDEX trace_losses_event_idx ON trace_losses (event_id);

-- Genealogy edges: kg of from_object that went into to_object (both directions are indexed, so a
-- recall walks forward from an orchard and a trace walks back from a shipment in one recursive query).
CREATE TABLE trace_edges (
    from_object text NOT NULL REFERENCES trace_objects,
    to_object   text NOT NULL REFERENCES trace_objects,
    event_id    text NOT NULL REFERENCES trace_events ON DELETE CASCADE,
    kg          numeric(14, 3) NOT NULL CHECK (kg > 0),
    PRIMARY KEY (from_object, to_object, event_id)
);
CREATE INDEX trace_edges_to_idx ON trace_edges (to_object);

-- What left for which buyer (the shipping step): one row per object shipped.
CREATE TABLE trace_deliveries (
    event_id     text NOT NULL REFERENCES trace_events ON DELETE CASCADE,
    object_id    text NOT NULL REFERENCES trace_objects,
    buyer_id     text NOT NULL REFERENCES buyers,
    order_id     text REFERENCES orders,
    destination  text NOT NULL,
    kg           numeric(14, 3) NOT NULL CHECK (kg > 0),
    shipment_id  bigint REFERENCES shipments,      -- the warehouse shipment (and its trace code), if any
    PRIMARY KEY (event_id, object_id)
);
CREATE INDEX trace_deliveries_buyer_idx ON trace_deliveries (buyer_id);
CREATE INDEX trace_deliveries_object_idx ON trace_deliveries (object_id);

-- Which cold room an object sat in and when (the storing step opens a stay, moving or shipping closes it).
CREATE TABLE trace_room_stays (
    object_id     text NOT NULL REFERENCES trace_objects,
    cold_room_id  text NOT NULL REFERENCES cold_rooms,
    entered_at    timestamptz NOT NULL,
    left_at       timestamptz,
    CHECK (left_at IS NULL OR left_at >= entered_at),
    PRIMARY KEY (object_id, entered_at)
);
CREATE INDEX trace_room_stays_room_idx ON trace_room_stays (cold_room_id, entered_at);

-- Per-room cold-chain limits (trading.cold_chain; a room without a row uses the documented defaults).
CREATE TABLE cold_room_limits (
    cold_room_id     text PRIMARY KEY REFERENCES cold_rooms ON DELETE CASCADE,
    max_c            double precision NOT NULL CHECK (max_c BETWEEN -10 AND 30),   -- °C
    min_c            double precision NOT NULL CHECK (min_c BETWEEN -10 AND 30),   -- °C
    alert_after_min  integer NOT NULL CHECK (alert_after_min BETWEEN 1 AND 1440),  -- minutes outside
    CHECK (min_c < max_c)
);

-- Consumer complaints against a lot (投诉渠道), recorded from the public trace page; seen by managers.
CREATE TABLE trace_complaints (
    complaint_id  bigserial PRIMARY KEY,
    client_id     text NOT NULL UNIQUE,                 -- generated by the page: a retry is one complaint
    object_id     text NOT NULL REFERENCES trace_objects,
    category      text NOT NULL CHECK (category IN ('quality', 'damage', 'weight', 'label', 'other')),
    text          text NOT NULL CHECK (length(text) BETWEEN 1 AND 1000),
    contact       text CHECK (length(contact) <= 100),
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'closed'))
);
CREATE INDEX trace_complaints_status_idx ON trace_complaints (status, submitted_at DESC);
