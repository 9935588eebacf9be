-- Each appointment list imported, or refused whole: what an admin checks when a night's export
-- is in doubt. Counts only; the rows themselves are in the other tables.
CREATE TABLE imports (
    id               TEXT PRIMARY KEY,
    campaign         TEXT NOT NULL,
    source           TEXT NOT NULL,        -- the file name as given, - (stdin), api
    at               BIGINT NOT NULL,
    created          BIGINT NOT NULL,
    updated          BIGINT NOT NULL,
    withdrawn        BIGINT NOT NULL,
    unchanged        BIGINT NOT NULL,
    skipped_too_late BIGINT NOT NULL,
    rejected         BIGINT NOT NULL,      -- rows refused (each is named in the summary)
    error            TEXT                  -- why the whole list was refused, if it was
);
CREATE INDEX imports_campaign_at ON imports (campaign, at);
