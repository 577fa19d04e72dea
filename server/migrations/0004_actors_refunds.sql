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
    -- cascade: payments are only soft-deleted by the API; a hard delete is
    -- someone cleaning up, and takes the refunds along
    payment_id  uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
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

-- Totals per currency and status (GET /v1/stats without filters, or with
-- only status and currency), kept by a row trigger in the writer's own
-- transaction, so the answer is a read of a few dozen rows instead of a
-- scan of every payment. Writers add their deltas to a shard of their own
-- (the backend's pid modulo 16): concurrent writers of one currency and
-- status do not queue behind one row lock. A change that moves a payment
-- from one total to another updates the two in sorted order, so two
-- writers that share a shard cannot deadlock (a bulk statement by hand,
-- touching many totals in row order, might; PostgreSQL then cancels one).
-- A change that moves no total (a description edit) does not fire it.
-- Deleted payments (deleted_at set) count nowhere. A statement-level
-- trigger with transition tables cost a create twice as much (BENCHMARKS.md).
CREATE TABLE payment_totals (
    currency        text NOT NULL,
    status          text NOT NULL,
    shard           integer NOT NULL,
    count           bigint NOT NULL,
    amount          numeric NOT NULL,
    amount_refunded numeric NOT NULL,
    PRIMARY KEY (currency, status, shard)
);

CREATE FUNCTION paytrackr_totals_bump(cur text, st text, c bigint, a numeric, r numeric)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO payment_totals AS t (currency, status, shard, count, amount, amount_refunded)
    VALUES (cur, st, pg_backend_pid() % 16, c, a, r)
    ON CONFLICT (currency, status, shard) DO UPDATE
       SET count = t.count + EXCLUDED.count, amount = t.amount + EXCLUDED.amount,
           amount_refunded = t.amount_refunded + EXCLUDED.amount_refunded
$$;

CREATE FUNCTION paytrackr_totals_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_live boolean := TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL;
    new_live boolean := TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL;
BEGIN
    IF old_live AND new_live AND OLD.currency = NEW.currency AND OLD.status = NEW.status THEN
        PERFORM paytrackr_totals_bump(NEW.currency, NEW.status, 0, NEW.amount - OLD.amount,
                                      NEW.amount_refunded - OLD.amount_refunded);
    ELSIF old_live AND new_live AND (OLD.currency, OLD.status) > (NEW.currency, NEW.status) THEN
        PERFORM paytrackr_totals_bump(NEW.currency, NEW.status, 1, NEW.amount,
                                      NEW.amount_refunded);
        PERFORM paytrackr_totals_bump(OLD.currency, OLD.status, -1, -OLD.amount,
                                      -OLD.amount_refunded);
    ELSE
        IF old_live THEN
            PERFORM paytrackr_totals_bump(OLD.currency, OLD.status, -1, -OLD.amount,
                                          -OLD.amount_refunded);
        END IF;
        IF new_live THEN
            PERFORM paytrackr_totals_bump(NEW.currency, NEW.status, 1, NEW.amount,
                                          NEW.amount_refunded);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION paytrackr_totals_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM payment_totals;
    RETURN NULL;
END
$$;

CREATE TRIGGER payments_totals_write AFTER INSERT OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION paytrackr_totals_row();
CREATE TRIGGER payments_totals_update AFTER UPDATE ON payments
    FOR EACH ROW
    WHEN (OLD.currency IS DISTINCT FROM NEW.currency OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.amount IS DISTINCT FROM NEW.amount
          OR OLD.amount_refunded IS DISTINCT FROM NEW.amount_refunded
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION paytrackr_totals_row();
CREATE TRIGGER payments_totals_truncate AFTER TRUNCATE ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION paytrackr_totals_truncate();

-- The triggers above block writers (CREATE TRIGGER locks the table) until
-- this transaction commits, so the totals start exact.
INSERT INTO payment_totals (currency, status, shard, count, amount, amount_refunded)
SELECT currency, status, 0, count(*), sum(amount), sum(amount_refunded)
  FROM payments WHERE deleted_at IS NULL GROUP BY currency, status;
