-- SMS: numbers a channel cannot reach (21614 not a mobile, 30006 landline), final for that
-- number and channel.
CREATE TABLE channel_blocks (
    phone      TEXT NOT NULL,
    channel    TEXT NOT NULL,              -- sms
    code       TEXT NOT NULL,              -- the provider's error code
    created_at BIGINT NOT NULL,
    PRIMARY KEY (phone, channel)
);
