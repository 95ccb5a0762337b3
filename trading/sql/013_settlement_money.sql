-- Settlement that follows the money (issue 17): a cooperative's rule set may also buy its members'
-- fruit at grade prices, say who bears shrink/loss, charge a handling cost, and return part of the
-- distributable surplus by transaction volume (patronage refund; the Farmers' Professional Cooperatives
-- Law asks for at least 60 % of it). NULLs keep the plain 四分 model.
ALTER TABLE settlement_rules ADD COLUMN grade_prices jsonb;            -- {"XL": 900, "L": 700, "M": 450} fen/kg
ALTER TABLE settlement_rules ADD COLUMN losses_borne_by_grower boolean NOT NULL DEFAULT true;
ALTER TABLE settlement_rules ADD COLUMN handling_fen_per_kg integer NOT NULL DEFAULT 0
    CHECK (handling_fen_per_kg >= 0);                                  -- cooperative's cost per kg sold
ALTER TABLE settlement_rules ADD COLUMN patronage_share_bp integer
    CHECK (patronage_share_bp IS NULL OR patronage_share_bp BETWEEN 6000 AND 10000);
