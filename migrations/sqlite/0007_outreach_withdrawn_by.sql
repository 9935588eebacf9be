-- Staff may end an outreach themselves (they reached the patient another way): who, and why.
ALTER TABLE outreach ADD COLUMN withdrawn_by TEXT;
ALTER TABLE outreach ADD COLUMN withdrawn_note TEXT;
