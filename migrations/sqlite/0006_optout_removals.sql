-- Numbers taken off the opt-out ledger: by the patient (START) or by staff at the patient's
-- request. Kept for good (a purge leaves them, as it leaves the ledger): who undid an opt-out,
-- and when, can always be shown.
CREATE TABLE optout_removals (
    id           TEXT PRIMARY KEY,
    phone        TEXT NOT NULL,
    source       TEXT NOT NULL,            -- the opt-out's own: keypad | sms | provider | list | api | …
    opted_out_at BIGINT NOT NULL,
    removed_at   BIGINT NOT NULL,
    removed_by   TEXT NOT NULL,            -- patient (START), or the name staff gave
    note         TEXT
);
CREATE INDEX optout_removals_phone ON optout_removals (phone, removed_at);
