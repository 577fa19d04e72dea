-- wrk: POST distinct valid payments (each thread and request differ).
-- With BENCH_IDEMPOTENCY=1 every request carries its own Idempotency-Key.
--
-- setup() runs in wrk's main Lua state and thread:set() sets a *global*
-- in the thread's own state: thread_id must stay global (a chunk-level
-- local would shadow it and every thread would send the same keys).
local counter = 0
local with_key = os.getenv("BENCH_IDEMPOTENCY") == "1"
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"amount":%d,"currency":"EUR","payer":"bench payer %d","payee":"bench payee","method":"card","reference":"B-%d-%d"}',
    (counter % 100000) + 1, thread_id, thread_id, counter)
  local headers = {["Content-Type"] = "application/json"}
  for k, v in pairs(wrk.headers) do
    headers[k] = v
  end
  if with_key then
    headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", os.time(), thread_id, counter)
  end
  return wrk.format("POST", "/v1/payments", headers, body)
end
