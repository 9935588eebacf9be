-- Rows of a list whose number is on the opt-out ledger: imported, and not called (their
-- outreach ended opted_out at once).
ALTER TABLE imports ADD COLUMN on_ledger BIGINT NOT NULL DEFAULT 0;
