-- A buyer account belongs to a buyer in trading's table (trading migrates before yuncang).
ALTER TABLE users ADD CONSTRAINT users_buyer_fk FOREIGN KEY (buyer_id) REFERENCES buyers ON DELETE CASCADE;
