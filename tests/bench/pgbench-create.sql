-- The SQL the server runs for one POST /v1/payments (server/store.c), with
-- the same transaction shape: BEGIN, insert the payment, insert its event
-- and NOTIFY, COMMIT. Parameters stand where the server binds them.
\set amount random(1, 100000)
BEGIN;
WITH t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS ts) INSERT INTO payments (amount, currency, payer, payee, reference, description, method, status, metadata, created_at, updated_at) SELECT :amount::bigint, 'EUR', 'bench payer', 'bench payee', 'B-1', NULL, 'card', 'pending', '{}'::jsonb, t.ts, t.ts FROM t RETURNING id::text AS pid, amount, currency, payer, payee, reference, description, method, status, metadata::text AS meta, version, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS"Z"') AS c, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS"Z"') AS u \gset
WITH e AS (INSERT INTO payment_events (type, payment_id, at, payment) VALUES ('payment.created', :pid::uuid, :u::timestamptz, replace('{"id"="00000000-0000-0000-0000-000000000000","amount"=12345,"currency"="EUR","payer"="bench payer","payee"="bench payee","reference"="B-1","description"=null,"method"="card","status"="pending","metadata"={},"version"=1,"created_at"="2026-11-24T12=00=00.123Z","updated_at"="2026-11-24T12=00=00.123Z"}', '=', chr(58))::json) RETURNING seq) SELECT pg_notify('paytrackr_events', seq::text) FROM e;
COMMIT;
