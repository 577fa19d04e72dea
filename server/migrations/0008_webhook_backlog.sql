-- paytrackr schema, version 8: a bounded count of an endpoint's backlog.
--
-- An endpoint's `pending` (the HTTP API) and its lag (/metrics, every 5 s
-- on the delivery thread) counted every matching event after its
-- delivered_seq. For an endpoint disabled for a day at 100 events/s that
-- is 8.6 million rows per endpoint and per request: the list of endpoints
-- would run into the statement timeout exactly when an operator looks at
-- the one that fell behind, and a filter that matches rarely made even a
-- LIMIT on the matching rows read the whole backlog.
--
-- paytrackr_webhook_backlog() looks at the first 10,000 events after
-- `after` (and up to `upto` when it is not NULL): how many of them match,
-- whether more events follow beyond them (`capped`: `pending` is then a
-- lower bound), and when the oldest matching one happened.
CREATE FUNCTION paytrackr_webhook_backlog(events jsonb, filter jsonb, after bigint, upto bigint,
                                          OUT pending bigint, OUT capped boolean,
                                          OUT oldest timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT count(*) FILTER (WHERE w.rn <= 10000 AND w.m),
           count(*) > 10000,
           min(w.at) FILTER (WHERE w.rn <= 10000 AND w.m)
      FROM (SELECT row_number() OVER (ORDER BY e.seq) AS rn, e.at,
                   paytrackr_webhook_matches(events, filter, e.type, e.payment) AS m
              FROM (SELECT pe.seq, pe.at, pe.type, pe.payment FROM payment_events pe
                     WHERE pe.seq > after AND (upto IS NULL OR pe.seq <= upto)
                     ORDER BY pe.seq LIMIT 10001) e) w
$$;
