-- wrk: POST distinct valid payments (each thread and request differ).
-- With BENCH_IDEMPOTENCY=1 every request carries its own Idempotency-Key.
local counter = 0
local thread_id = 0
local with_key = os.getenv("BENCH_IDEMPOTENCY") == "1"

function setup(thread)
  thread:set("thread_id", math.random(1, 1000000))
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
    headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", thread_id, counter, math.random(1, 1000000000))
  end
  return wrk.format("POST", "/v1/payments", headers, body)
end
