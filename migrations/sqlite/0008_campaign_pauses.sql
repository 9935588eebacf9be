-- A campaign paused by staff: nothing of it is dialled or texted until it is resumed. Kept after
-- the resume, so that who stopped the calls, when and why can be shown.
CREATE TABLE campaign_pauses (
    id         TEXT PRIMARY KEY,
    campaign   TEXT NOT NULL,
    paused_at  BIGINT NOT NULL,
    paused_by  TEXT NOT NULL,
    note       TEXT,
    resumed_at BIGINT,
    resumed_by TEXT
);
-- At most one pause in force per campaign.
CREATE UNIQUE INDEX campaign_pauses_in_force ON campaign_pauses (campaign) WHERE resumed_at IS NULL;
