-- paytrackr schema, version 5: webhook endpoints and their delivery log
-- (see docs/webhooks.md and server/webhook.h).
--
-- The database is the source of truth for delivery: `delivered_seq` is the
-- last seq the endpoint acknowledged (every matching event up to it is
-- delivered; events that do not match move it too), `attempt` counts the
-- failed attempts at the next event, `next_attempt_at` is when it may be
-- tried again. A replica works on an endpoint only while it holds its
-- lease (`lease_owner`, `lease_until`): it takes one with
-- FOR UPDATE SKIP LOCKED among endpoints whose lease is free or expired,
-- so a replica that dies leaves its endpoints to the others once the lease
-- runs out. Every result is written back only if the lease, the
-- endpoint's `config_version` and `delivered_seq` are still what the
-- replica read, so a replay, a PATCH or a lost lease wins over an attempt
-- in flight.
CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url             text NOT NULL,
    events          jsonb NOT NULL,              -- ["payment.created", ...] or ["*"]
    filter          jsonb NOT NULL DEFAULT '{}', -- {"status": ..., "currency": ...}
    description     text,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    secret          text NOT NULL,
    old_secret      text,
    old_secret_until timestamptz,
    delivered_seq   bigint NOT NULL,
    attempt         integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    config_version  bigint NOT NULL DEFAULT 1,
    actor           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_due_idx ON webhook_endpoints (next_attempt_at) WHERE enabled;

-- One row per attempt; newest first per endpoint for the deliveries page.
CREATE TABLE webhook_deliveries (
    id          bigserial PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    attempt     integer NOT NULL,
    status_code integer,
    error       text,
    duration_ms integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

-- Whether event `e` (type, payment) is one endpoint `w` asked for.
CREATE FUNCTION paytrackr_webhook_matches(events jsonb, filter jsonb, type text, payment json)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (events ? '*' OR events ? type)
       AND (filter->>'status' IS NULL OR filter->>'status' = payment->>'status')
       AND (filter->>'currency' IS NULL OR filter->>'currency' = payment->>'currency')
       AND (filter->>'payer' IS NULL OR filter->>'payer' = payment->>'payer')
       AND (filter->>'payee' IS NULL OR filter->>'payee' = payment->>'payee')
$$;
