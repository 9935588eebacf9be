-- A purge (`ringback purge`, `retention_days`) deletes finished outreach, then the appointments
-- and patients nothing refers to any more. PostgreSQL checks each deleted row's foreign keys by
-- looking it up in the referring table: these indexes make each check one lookup, not a scan.
-- (SQLite's purge skips the checks instead: its imports stay without these indexes.)
CREATE INDEX followups_outreach ON followups (outreach_id);
CREATE INDEX outreach_appointment ON outreach (appointment_id);
CREATE INDEX outreach_patient ON outreach (patient_id);
CREATE INDEX appointments_patient ON appointments (patient_id);

-- What a purge deleted of the calls and messages placed, kept as counts, so that /metrics'
-- counters (calls, call results, SMS) never go down when old rows go (Prometheus would read
-- a drop as a restart). '' stands for none in call_status and answerer.
CREATE TABLE purged_attempts (
    campaign    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    call_status TEXT NOT NULL,
    answerer    TEXT NOT NULL,             -- human | machine | '' (as the KPIs count it)
    n           BIGINT NOT NULL,
    PRIMARY KEY (campaign, channel, call_status, answerer)
);
