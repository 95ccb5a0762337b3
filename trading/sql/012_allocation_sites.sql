-- Several origin warehouse sites (issue 17): every allocation row names the site the fruit goes through
-- (chosen by the LP per orchard and week). Rows of earlier runs keep '' (one site, not recorded).
ALTER TABLE allocations ADD COLUMN warehouse_id text NOT NULL DEFAULT '';
ALTER TABLE allocations DROP CONSTRAINT allocations_pkey;
ALTER TABLE allocations ADD PRIMARY KEY (alloc_run_id, order_id, orchard_id, harvest_week, delivery_week, grade,
                                         status, warehouse_id);
CREATE INDEX allocations_site_idx ON allocations (alloc_run_id, warehouse_id, harvest_week);
