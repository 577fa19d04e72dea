-- paytrackr schema, version 1: payments, their events (audit trail and
-- change feed) and idempotency keys.

CREATE TABLE payments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    amount      bigint NOT NULL CHECK (amount BETWEEN 1 AND 999999999999999),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payer       text NOT NULL,
    payee       text NOT NULL,
    reference   text,
    description text,
    method      text NOT NULL
                CHECK (method IN ('card', 'bank_transfer', 'cash', 'wallet', 'other')),
    status      text NOT NULL
                CHECK (status IN ('pending', 'settled', 'failed', 'cancelled', 'refunded')),
    metadata    jsonb NOT NULL DEFAULT '{}',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz
);

-- Keyset pagination walks (created_at, id); each list filter gets an index
-- that leads with its column and ends in the pagination key, so a filtered
-- page is one index range scan in either order.
CREATE INDEX payments_page_idx ON payments (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX payments_status_idx ON payments (status, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX payments_currency_idx ON payments (currency, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX payments_payer_idx ON payments (payer, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX payments_payee_idx ON payments (payee, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX payments_method_idx ON payments (method, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX payments_amount_idx ON payments (amount) WHERE deleted_at IS NULL;

-- The text search `q` is a case-insensitive substring match; a trigram
-- index serves it where pg_trgm may be installed (Azure needs it
-- allow-listed in azure.extensions). Without it the filter still works,
-- by scanning.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXECUTE 'CREATE INDEX payments_q_idx ON payments USING gin '
            '((lower(payer || chr(1) || payee || chr(1) || coalesce(reference, ''''))) gin_trgm_ops) '
            'WHERE deleted_at IS NULL';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm unavailable (%), q filter will scan', SQLERRM;
END
$$;

-- Events: one row per change, written in the change's own transaction.
-- Writers always modify `payments` before inserting here, so a transaction
-- has its xid before it draws a seq: paytrackr_stable_seq() relies on it.
CREATE TABLE payment_events (
    seq        bigserial PRIMARY KEY,
    type       text NOT NULL
               CHECK (type IN ('payment.created', 'payment.updated', 'payment.deleted')),
    payment_id uuid NOT NULL,
    at         timestamptz NOT NULL,
    payment    json NOT NULL
);
CREATE INDEX payment_events_payment_idx ON payment_events (payment_id, seq);

CREATE TABLE idempotency_keys (
    caller       text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       integer NOT NULL,
    body         text NOT NULL,
    location     text,
    etag         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- The highest seq below which every event is final (committed or rolled
-- back), so a reader that stops there can never later see a smaller seq
-- appear. Sequence values are drawn at INSERT but become visible at
-- COMMIT, in another order. So: read the sequence's high-water mark first,
-- then take a snapshot; every transaction that drew a seq up to that mark
-- had its xid by then (see payment_events above) and is either finished or
-- listed in the snapshot. Waiting for the listed ones to finish makes every
-- seq up to the mark final. Returns NULL if that takes longer than
-- max_wait (a long-running writer), so the caller can retry later.
CREATE FUNCTION paytrackr_stable_seq(max_wait interval DEFAULT '5 seconds')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    high bigint;
    snap pg_snapshot;
    x xid8;
    deadline timestamptz := clock_timestamp() + max_wait;
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO high
      FROM payment_events_seq_seq;
    snap := pg_current_snapshot();
    FOR x IN SELECT pg_snapshot_xip(snap) LOOP
        WHILE pg_xact_status(x) = 'in progress' LOOP
            IF clock_timestamp() > deadline THEN
                RETURN NULL;
            END IF;
            PERFORM pg_sleep(0.0005);
        END LOOP;
    END LOOP;
    RETURN high;
END
$$;
