-- ringback's own tables. Ids are ULIDs made by the application; instants are Unix milliseconds (UTC).

CREATE TABLE patients (
    id          TEXT PRIMARY KEY,
    clinic      TEXT NOT NULL,
    external_id TEXT,                      -- the clinic's patient id; none for a caller we only know by number
    first_name  TEXT NOT NULL,
    last_name   TEXT,
    phone       TEXT NOT NULL,             -- E.164
    timezone    TEXT,                      -- IANA, when known
    language    TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (clinic, external_id)
);
CREATE INDEX patients_phone ON patients (phone);

CREATE TABLE appointments (
    id          TEXT PRIMARY KEY,
    campaign    TEXT NOT NULL,
    external_id TEXT NOT NULL,             -- the clinic's appointment id
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    starts_at   BIGINT NOT NULL,
    timezone    TEXT NOT NULL,             -- the zone the appointment is kept in
    provider    TEXT,
    location    TEXT,
    status      TEXT NOT NULL,             -- booked | cancelled
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (campaign, external_id)
);

-- One campaign, one patient, one subject (an appointment or a callback request); one outcome at the end.
CREATE TABLE outreach (
    id             TEXT PRIMARY KEY,
    campaign       TEXT NOT NULL,
    kind           TEXT NOT NULL,          -- reminder | callback
    patient_id     TEXT NOT NULL REFERENCES patients (id),
    appointment_id TEXT REFERENCES appointments (id),
    phone          TEXT NOT NULL,          -- E.164, as dialled
    timezone       TEXT NOT NULL,          -- the patient's zone, else the campaign's
    language       TEXT NOT NULL,
    opens_at       BIGINT NOT NULL,        -- no attempt before
    deadline       BIGINT NOT NULL,        -- no attempt at or after
    state          TEXT NOT NULL,          -- active | finished
    outcome        TEXT,
    outcome_at     BIGINT,
    source         TEXT,                   -- callbacks: missed_call | voicemail | web_form | api; reminders: import
    note           TEXT,
    requests       INTEGER NOT NULL DEFAULT 1, -- callbacks merged into this one
    recording_url  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX outreach_campaign_state ON outreach (campaign, state);
CREATE INDEX outreach_phone_state ON outreach (phone, state);
CREATE UNIQUE INDEX outreach_one_open_per_appointment ON outreach (appointment_id)
    WHERE state = 'active' AND appointment_id IS NOT NULL;
CREATE UNIQUE INDEX outreach_one_open_callback ON outreach (campaign, phone)
    WHERE state = 'active' AND kind = 'callback';

-- One call or one SMS, planned for a moment, placed at most once.
CREATE TABLE attempts (
    id            TEXT PRIMARY KEY,
    outreach_id   TEXT NOT NULL REFERENCES outreach (id),
    seq           INTEGER NOT NULL,        -- 1, 2, 3 … within the outreach
    channel       TEXT NOT NULL,           -- voice | sms
    phone         TEXT NOT NULL,           -- E.164; the caps and the opt-out ledger key on it
    status        TEXT NOT NULL,           -- planned | dialing | live | done | withdrawn
    error         TEXT,                    -- why the provider did not take it, or what was unclear
    due_at        BIGINT NOT NULL,
    daypart       TEXT,
    reason        TEXT NOT NULL,
    task_id       TEXT,                    -- the queue job that wakes it (a ULID)
    provider_id   TEXT,                    -- CallSid / MessageSid
    placed_at     BIGINT,
    answered_at   BIGINT,
    ended_at      BIGINT,
    result        TEXT,                    -- completed | no-answer | busy | failed | canceled | delivered …
    answered_by   TEXT,                    -- human | machine_end_beep | …
    digits        TEXT,
    error_code    TEXT,
    duration_s    INTEGER,
    call_status   TEXT,                    -- the furthest provider status applied (queued … completed)
    status_rank   INTEGER NOT NULL DEFAULT -1, -- its rank: statuses only move forward
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (outreach_id, seq)
);
CREATE INDEX attempts_phone_due ON attempts (phone, due_at);
CREATE INDEX attempts_status_due ON attempts (status, due_at);
CREATE UNIQUE INDEX attempts_provider_id ON attempts (provider_id) WHERE provider_id IS NOT NULL;
-- Calls in flight, counted before each dial (the live-call limit).
CREATE INDEX attempts_in_flight ON attempts (channel) WHERE status IN ('dialing', 'live');

-- What staff must act on.
CREATE TABLE followups (
    id              TEXT PRIMARY KEY,
    campaign        TEXT NOT NULL,
    outreach_id     TEXT REFERENCES outreach (id),
    phone           TEXT,
    reason          TEXT NOT NULL,         -- reschedule_requested | cancel_requested | unreachable | …
    detail          TEXT,
    status          TEXT NOT NULL,         -- open | resolved
    created_at      BIGINT NOT NULL,
    resolved_at     BIGINT,
    resolved_by     TEXT,
    resolution_note TEXT
);
CREATE INDEX followups_campaign_status ON followups (campaign, status);

-- Per number, across campaigns and channels.
CREATE TABLE optouts (
    phone      TEXT PRIMARY KEY,
    source     TEXT NOT NULL,              -- keypad | sms | provider | list | api
    created_at BIGINT NOT NULL
);

-- Each webhook delivery is applied once.
CREATE TABLE webhook_deliveries (
    key         TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);

-- What happened to an outreach, in order: the audit trail behind outcomes and KPIs.
CREATE TABLE outreach_events (
    id          TEXT PRIMARY KEY,
    outreach_id TEXT NOT NULL REFERENCES outreach (id),
    attempt_id  TEXT,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX outreach_events_outreach ON outreach_events (outreach_id, at);

-- Pacing shared by every worker: the GCRA theoretical arrival time per provider account.
CREATE TABLE pace (
    account TEXT PRIMARY KEY,
    tat_ms  BIGINT NOT NULL
);
