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
