-- paytrackr schema, version 7: cheaper webhook bookkeeping.
--
-- With a hundred endpoints each acknowledging a hundred events a second,
-- the delivery thread rewrites every endpoint row (delivered_seq, lease)
-- and logs every attempt about a hundred times a second. Two costs of that
-- are gone here:
--
-- Room on each page of webhook_endpoints, so that those rewrites stay on
-- their page and leave the indexes alone (HOT updates: the writer no
-- longer moves next_attempt_at, which is indexed, unless it releases the
-- endpoint). Pages already written get the room as they are rewritten.
ALTER TABLE webhook_endpoints SET (fillfactor = 50);

-- The deliveries log's foreign key ran a check of its own, with a row
-- lock, for every attempt logged. The writer already joins each attempt
-- to its endpoint, and deleting an endpoint deletes its log in the same
-- transaction (after the endpoint row, so that it sees every attempt
-- logged by a writer it waited for).
ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS webhook_deliveries_endpoint_id_fkey;

