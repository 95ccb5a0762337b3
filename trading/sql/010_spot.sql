-- Spot trading from warehouse stock (issue 17): one stock for every channel.
--
-- Stock of a lot and grade (lot_grades) now has three parts:
--   remaining_kg  physically in the cold room (received minus shipped, sold-and-collected, lost)
--   reserved_kg   part of remaining held for spot sales not yet collected (a hold that expires, or a
--                 confirmed sale awaiting pickup/shipment)
--   available     = remaining_kg - reserved_kg: what any channel may take now
-- Every channel (online reservation, hall counter sale, forward-order fulfilment, loss record) takes
-- kg with one conditional UPDATE ... WHERE remaining_kg - reserved_kg >= kg on the row (row lock), and
-- the CHECKs below make an oversell impossible even for a buggy writer.
ALTER TABLE lot_grades ADD COLUMN reserved_kg numeric(14, 3) NOT NULL DEFAULT 0;
ALTER TABLE lot_grades ADD CONSTRAINT lot_grades_reserved_ck CHECK (reserved_kg >= 0 AND reserved_kg <= remaining_kg);

-- Origin warehouse sites (产地仓): township, location (warehouses.lat/lon) and weekly handling capacity.
ALTER TABLE warehouses ADD COLUMN township text NOT NULL DEFAULT '';
ALTER TABLE warehouses ADD COLUMN intake_kg_per_week numeric(14, 3) CHECK (intake_kg_per_week IS NULL OR intake_kg_per_week >= 0);
ALTER TABLE warehouses ADD COLUMN active boolean NOT NULL DEFAULT true;

-- Cold-chain state and certification of a lot as the warehouse records them (offered to buyers).
ALTER TABLE lots ADD COLUMN cold_chain_state text NOT NULL DEFAULT 'unbroken'
    CHECK (cold_chain_state IN ('unbroken', 'excursion', 'unknown'));

-- Forward-order shipments: the site they leave from, and the client's request id (a retried shipment
-- is not two shipments).
ALTER TABLE shipments ADD COLUMN from_warehouse_id text REFERENCES warehouses;
ALTER TABLE shipments ADD COLUMN client_request_id text;
CREATE UNIQUE INDEX shipments_request_idx ON shipments (client_request_id) WHERE client_request_id IS NOT NULL;

-- List price per site, grade and day, set by the warehouse manager.
CREATE TABLE spot_prices (
    warehouse_id     text NOT NULL REFERENCES warehouses,
    price_date       date NOT NULL,
    grade            text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    price_fen_per_kg integer NOT NULL CHECK (price_fen_per_kg > 0),
    set_by           text NOT NULL,
    set_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, price_date, grade)
);

-- A spot sale: online (reserve -> confirm -> pickup/shipment) or at the hall counter (paid and taken).
CREATE TABLE spot_sales (
    sale_id           text PRIMARY KEY,                  -- 'SP-2026-XXXXXXXX'
    channel           text NOT NULL CHECK (channel IN ('online', 'hall')),
    warehouse_id      text NOT NULL REFERENCES warehouses,
    buyer_id          text REFERENCES buyers,            -- NULL for a walk-in buyer at the hall
    walk_in_name      text,
    actor             text NOT NULL,                     -- username that made the request
    client_request_id text NOT NULL,
    request_hash      text NOT NULL,
    status            text NOT NULL CHECK (status IN ('held', 'confirmed', 'delivered', 'expired', 'cancelled')),
    fulfilment        text NOT NULL CHECK (fulfilment IN ('pickup', 'shipment', 'counter')),
    destination       text,
    payment_method    text CHECK (payment_method IN ('cash', 'transfer', 'online')),
    offer_id          bigint,                            -- the accepted buyer offer it came from
    expires_at        timestamptz,                       -- end of the hold (status 'held')
    total_fen         bigint NOT NULL CHECK (total_fen >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    confirmed_at      timestamptz,
    delivered_at      timestamptz,
    UNIQUE (actor, client_request_id),
    CHECK (buyer_id IS NOT NULL OR channel = 'hall'),
    CHECK (status <> 'held' OR expires_at IS NOT NULL)
);
CREATE INDEX spot_sales_hold_idx ON spot_sales (expires_at) WHERE status = 'held';
CREATE INDEX spot_sales_buyer_idx ON spot_sales (buyer_id, created_at);

CREATE TABLE spot_sale_lines (
    sale_id          text NOT NULL REFERENCES spot_sales ON DELETE CASCADE,
    line_no          integer NOT NULL,
    lot_id           text NOT NULL REFERENCES lots,
    grade            text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    kg               numeric(14, 3) NOT NULL CHECK (kg > 0),
    price_fen_per_kg integer NOT NULL CHECK (price_fen_per_kg > 0),
    amount_fen       bigint NOT NULL CHECK (amount_fen >= 0),
    trace_code       text UNIQUE,                        -- given when the fruit leaves the site
    PRIMARY KEY (sale_id, line_no)
);
CREATE INDEX spot_sale_lines_lot_idx ON spot_sale_lines (lot_id, grade);

-- A buyer's price offer on stock; the manager accepts (it becomes a held sale) or declines.
CREATE TABLE spot_offers (
    offer_id          bigserial PRIMARY KEY,
    buyer_id          text NOT NULL REFERENCES buyers,
    lot_id            text NOT NULL REFERENCES lots,
    grade             text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    kg                numeric(14, 3) NOT NULL CHECK (kg > 0),
    price_fen_per_kg  integer NOT NULL CHECK (price_fen_per_kg > 0),
    client_request_id text NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined')),
    decided_by        text,
    decided_at        timestamptz,
    sale_id           text REFERENCES spot_sales,
    note              text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (buyer_id, client_request_id)
);

-- Shrink and loss between harvest and sale (weight loss in storage, decay, damage), by lot and grade.
CREATE TABLE lot_losses (
    loss_id      bigserial PRIMARY KEY,
    lot_id       text NOT NULL REFERENCES lots,
    grade        text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    kg           numeric(14, 3) NOT NULL CHECK (kg > 0),
    reason       text NOT NULL CHECK (reason IN ('shrink', 'decay', 'damage', 'other')),
    note         text NOT NULL DEFAULT '',
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lot_losses_lot_idx ON lot_losses (lot_id, grade);

-- Hall staff: a manager grants an account the right to record counter sales at one site
-- (a manager-scoped permission; managers and admins hold it everywhere).
CREATE TABLE hall_staff (
    username     text NOT NULL,
    warehouse_id text NOT NULL REFERENCES warehouses,
    granted_by   text NOT NULL,
    granted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, warehouse_id)
);
