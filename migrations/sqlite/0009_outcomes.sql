-- The outcome feed reads what ended in a span of time, oldest first (`ringback outcomes`,
-- `GET /v1/outcomes`); an outreach still calling has no outcome_at and costs the index nothing.
CREATE INDEX outreach_outcome_at ON outreach (outcome_at, id) WHERE outcome_at IS NOT NULL;
-- An outreach's follow-ups, as the feed shows them (PostgreSQL has it since 0005; imports write
-- no follow-ups, so it costs them nothing).
CREATE INDEX followups_outreach ON followups (outreach_id);
