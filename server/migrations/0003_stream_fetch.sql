-- paytrackr schema, version 3: paytrackr_stream_fetch(), the listener's
-- fetch in one round trip (see docs/stream.md).
--
-- The bounds (paytrackr_stream_bounds, migration 0002), then, in a later
-- statement of this volatile function (so with a snapshot taken after
-- every seq up to `stable` was final), the events in (after, stable], at
-- most lim. Every row carries stable and
-- high; with no events, one row with ev_seq NULL carries them.
CREATE OR REPLACE FUNCTION paytrackr_stream_fetch(after bigint, lim integer,
                                                  max_wait interval DEFAULT '5 seconds')
RETURNS TABLE (ev_seq bigint, ev_type text, ev_at text, ev_payment text, ev_status text,
               ev_currency text, ev_payer text, ev_payee text, stable bigint, high bigint)
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
                   e.payment->>'payer', e.payment->>'payee', b.stable, b.high
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
