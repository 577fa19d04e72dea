-- paytrackr schema, version 2: the stable seq (see docs/stream.md).
--
-- paytrackr_stable_seq() returns S such that every seq <= S is final:
-- committed and visible, or never to appear. Readers of events (the
-- change feed, the WebSocket stream) stop there, so a reader that has seen
-- seq 11 can never later miss seq 10 that committed after it.
--
-- Version 1 waited for the xids in pg_current_snapshot()'s xip list. That
-- list holds only in-progress xids below the snapshot's xmax, and xmax is
-- "latest completed xid + 1", not "next xid": a writer whose xid is newer
-- than every finished transaction (a lone writer, or the newest of several)
-- is in progress yet absent from the list. The function then returned a
-- seq whose event was not committed yet, and a reader that moved its
-- cursor past it lost that event for good.
--
-- This version relies on two facts about locks, which pg_locks lists
-- (fast-path ones included) and which are released only after the
-- transaction has finished and become visible to new snapshots:
--
-- 1. nextval() locks the sequence in RowExclusiveLock mode before it draws
--    a value. So after reading the sequence's high-water mark H, every
--    transaction that drew a seq <= H and has not finished is among the
--    holders of that lock. (Readers of the sequence, like this function,
--    take AccessShareLock, which is not counted.)
-- 2. Writers announce each seq they draw, in the same statement, with a
--    transaction-scoped advisory lock on the two int4 keys
--    (seq >> 32, low 32 bits of seq) (store.c, insert_event). pg_locks
--    shows it as classid/objid with objsubid 2; nothing else in paytrackr
--    uses that form.
--
-- So: read H; take the holders; while one of them still holds the lock
-- without having announced a seq (it is between nextval() and its
-- announcement, or it is a writer that does not announce), wait for it;
-- then every unfinished seq <= H is announced, and S = min(H, lowest
-- announced seq - 1). An event is held back only by writers with a lower
-- seq that are still committing, never by later ones or by transactions
-- that write elsewhere. The sequence must keep CACHE 1 (the default): a
-- value cached by a session would be handed out later by a transaction
-- that did not hold the lock when H was read.
--
-- paytrackr_stream_bounds() also returns H, so a reader knows whether
-- something was in flight (S < H) and should look again soon: a writer
-- that rolls back sends no notification. Both return NULL when the wait
-- takes longer than max_wait (a long-running writer that does not
-- announce), so the caller can retry later.
CREATE OR REPLACE FUNCTION paytrackr_stream_bounds(max_wait interval DEFAULT '5 seconds',
                                                   OUT stable bigint, OUT high bigint)
LANGUAGE plpgsql AS $$
DECLARE
    seq_oid oid := 'payment_events_seq_seq'::regclass;
    db_oid oid := (SELECT oid FROM pg_database WHERE datname = current_database());
    holders text[];
    lowest bigint;
    unannounced bigint;
    deadline timestamptz := clock_timestamp() + max_wait;
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO high
      FROM payment_events_seq_seq;
    SELECT array_agg(virtualtransaction) INTO holders
      FROM pg_locks
     WHERE locktype = 'relation' AND database = db_oid AND relation = seq_oid
       AND mode = 'RowExclusiveLock' AND granted;
    LOOP
        IF holders IS NULL THEN
            stable := high;
            RETURN;
        END IF;
        -- one reading of the lock table for both questions
        WITH l AS (
            SELECT locktype, database, relation, mode, granted, virtualtransaction,
                   classid, objid, objsubid
              FROM pg_locks
        ), still AS (
            SELECT DISTINCT virtualtransaction AS v FROM l
             WHERE locktype = 'relation' AND database = db_oid AND relation = seq_oid
               AND mode = 'RowExclusiveLock' AND granted
               AND virtualtransaction = ANY (holders)
        ), announced AS (
            SELECT virtualtransaction AS v,
                   min((classid::bigint << 32) | objid::bigint) AS seq
              FROM l
             WHERE locktype = 'advisory' AND database = db_oid AND objsubid = 2 AND granted
             GROUP BY virtualtransaction
        )
        SELECT array_agg(still.v), min(announced.seq),
               count(*) FILTER (WHERE announced.seq IS NULL)
          INTO holders, lowest, unannounced
          FROM still LEFT JOIN announced USING (v);
        IF holders IS NULL THEN
            stable := high;
            RETURN;
        END IF;
        IF unannounced = 0 THEN
            stable := least(high, lowest - 1);
            RETURN;
        END IF;
        IF clock_timestamp() > deadline THEN
            stable := NULL;
            high := NULL;
            RETURN;
        END IF;
        PERFORM pg_sleep(0.0002);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION paytrackr_stable_seq(max_wait interval DEFAULT '5 seconds')
RETURNS bigint LANGUAGE sql AS $$
    SELECT stable FROM paytrackr_stream_bounds(max_wait)
$$;
