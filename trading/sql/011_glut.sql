-- The emergency channel for a glut (滞销应急, issue 17): a manager opens the uncovered volume of an
-- unsold-risk warning as a targeted-procurement offer (定向采购 / 以购代捐) to institutional buyers at a
-- floor price; each acceptance becomes a forward order (orders.glut_offer_id) that the allocation LP
-- matches like any other. Partner organisations may pledge a season's purchases.
CREATE TABLE glut_offers (
    glut_offer_id    bigserial PRIMARY KEY,
    season           integer NOT NULL,
    week_start       date NOT NULL CHECK (extract(isodow FROM week_start) = 1),
    grade            text NOT NULL CHECK (grade IN ('XL', 'L', 'M')),
    offered_kg       numeric(14, 3) NOT NULL CHECK (offered_kg > 0),
    floor_price_fen_per_kg integer NOT NULL CHECK (floor_price_fen_per_kg > 0),
    warning_key      text NOT NULL,                 -- the unsold_risk alert's dedupe key it answers
    surplus_kg       numeric(14, 3) NOT NULL,       -- the warning's uncovered kg when opened
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_by        text NOT NULL,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    closes_at        timestamptz,
    note             text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX glut_offers_open_idx ON glut_offers (season, week_start, grade) WHERE status = 'open';

ALTER TABLE orders ADD COLUMN glut_offer_id bigint REFERENCES glut_offers;

CREATE TABLE glut_acceptances (
    glut_offer_id  bigint NOT NULL REFERENCES glut_offers,
    buyer_id       text NOT NULL REFERENCES buyers,
    kg             numeric(14, 3) NOT NULL CHECK (kg > 0),
    price_fen_per_kg integer NOT NULL CHECK (price_fen_per_kg > 0),
    order_id       text NOT NULL REFERENCES orders,
    actor          text NOT NULL,
    accepted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (glut_offer_id, buyer_id)             -- one action per partner and offer
);

CREATE TABLE partner_pledges (
    buyer_id     text NOT NULL REFERENCES buyers,
    season       integer NOT NULL,
    pledged_fen  bigint CHECK (pledged_fen IS NULL OR pledged_fen >= 0),
    pledged_kg   numeric(14, 3) CHECK (pledged_kg IS NULL OR pledged_kg >= 0),
    note         text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (buyer_id, season),
    CHECK (pledged_fen IS NOT NULL OR pledged_kg IS NOT NULL)
);
