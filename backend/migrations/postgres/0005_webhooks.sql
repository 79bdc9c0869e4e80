-- A widget's webhooks (Standard Webhooks): where to POST which events,
-- signed with the secret (`whsec_` and base64 of 32 random bytes).
-- `events` is a comma-separated list of event types.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    widget_id   TEXT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhooks_by_widget ON webhooks (widget_id);

-- One event for one webhook, until it is delivered or given up on. Its id
-- is the `webhook-id` header, the same on every attempt; `next_at` is
-- when it is due (pending ones); a sender holds it until `lease_until`
-- so two replicas do not send it at once. Times in ms since the epoch.
CREATE TABLE webhook_deliveries (
    id            TEXT PRIMARY KEY,
    webhook_id    TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event         TEXT NOT NULL,
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       BIGINT NOT NULL,
    lease_until   BIGINT NOT NULL DEFAULT 0,
    last_status   INTEGER,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at);
