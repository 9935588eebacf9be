-- Callbacks: the second leg of a bridged call, and calls that never rang the patient.

-- The `<Dial>` leg of a callback: the patient (agent first) or the clinic line (patient first).
ALTER TABLE attempts ADD COLUMN bridge_status TEXT;    -- DialCallStatus, or 'voicemail' when staff say so
ALTER TABLE attempts ADD COLUMN bridged_at BIGINT;     -- when the two parties were connected
-- 0 when the patient's phone never rang (agent first, and the clinic line did not answer):
-- such a call is no patient attempt and counts towards no limit.
ALTER TABLE attempts ADD COLUMN counted INTEGER NOT NULL DEFAULT 1;

-- The last time a callback was asked for (merged requests move it).
ALTER TABLE outreach ADD COLUMN requested_at BIGINT;
