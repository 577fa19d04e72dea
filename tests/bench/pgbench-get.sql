-- The SQL of GET /v1/payments/{id} (server/store.c load_payment).
\set n random(1, 100000)
SELECT id::text, amount, currency, payer, payee, reference, description, method, status, metadata::text, version, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS"Z"'), to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS"Z"') FROM payments WHERE id = ('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid AND deleted_at IS NULL;
