-- paytrackr schema, version 4 (v1.1): who did it, and refunds in parts.
--
-- Events gain `actor` ({"name","role"} of the token that made the change)
-- and `refund` (the refund a payment.updated event records). Both are
-- nullable columns without a default, so adding them rewrites nothing:
-- events written before v1.1 read back with "actor": null. They are `json`
-- (not jsonb) so that the text this server wrote comes back byte for byte,
-- members in the contract's order.
ALTER TABLE payment_events ADD COLUMN actor json;
ALTER TABLE payment_events ADD COLUMN refund json;

-- The sum of a payment's refunds. A constant default is stored in the
-- catalogue, not written into every row. A payment refunded whole before
-- v1.1 (PATCH status=refunded) had everything refunded: say so, so that
-- what is left is 0 and the stats add up.
ALTER TABLE payments ADD COLUMN amount_refunded bigint NOT NULL DEFAULT 0;
UPDATE payments SET amount_refunded = amount WHERE status = 'refunded' AND amount_refunded = 0;
ALTER TABLE payments ADD CONSTRAINT payments_refunded_range
    CHECK (amount_refunded >= 0 AND amount_refunded <= amount);

CREATE TABLE refunds (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id  uuid NOT NULL REFERENCES payments (id),
    amount      bigint NOT NULL CHECK (amount BETWEEN 1 AND 999999999999999),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason      text NOT NULL
                CHECK (reason IN ('requested_by_customer', 'duplicate', 'fraudulent', 'other')),
    note        text,
    actor_name  text NOT NULL,
    actor_role  text NOT NULL CHECK (actor_role IN ('viewer', 'operator')),
    created_at  timestamptz NOT NULL
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at, id);

-- The stream's fetch (migration 0003) also returns each event's actor and
-- refund. The new columns come last, so a replica still running the
-- previous version, which names the columns it reads, keeps working while
-- a rolling upgrade is under way. The result type changes: drop, then
-- create.
DROP FUNCTION IF EXISTS paytrackr_stream_fetch(bigint, integer, interval);
CREATE FUNCTION paytrackr_stream_fetch(after bigint, lim integer,
                                       max_wait interval DEFAULT '5 seconds')
RETURNS TABLE (ev_seq bigint, ev_type text, ev_at text, ev_payment text, ev_status text,
               ev_currency text, ev_payer text, ev_payee text, stable bigint, high bigint,
               ev_actor text, ev_refund text)
LANGUAGE plpgsql AS $$
DECLARE
    b record;
BEGIN
    SELECT * INTO b FROM paytrackr_stream_bounds(max_wait);
    stable := b.stable;
    high := b.high;
    IF b.stable IS NOT NULL AND b.stable > after THEN
        RETURN QUERY
            SELECT e.seq, e.type,
                   to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   e.payment::text, e.payment->>'status', e.payment->>'currency',
                   e.payment->>'payer', e.payment->>'payee', b.stable, b.high,
                   e.actor::text, e.refund::text
              FROM payment_events e
             WHERE e.seq > after AND e.seq <= b.stable
             ORDER BY e.seq
             LIMIT lim;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN NEXT; -- ev_* NULL: just the bounds
END
$$;
