-- The outcome feed reads what ended in a span of time, oldest first (`ringback outcomes`,
-- `GET /v1/outcomes`); an outreach still calling has no outcome_at and costs the index nothing.
-- (Its follow-ups are found by followups_outreach, of 0005.)
CREATE INDEX outreach_outcome_at ON outreach (outcome_at, id) WHERE outcome_at IS NOT NULL;
