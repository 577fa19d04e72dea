-- wrk: POST distinct valid payments (each thread and request differ).
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", math.random(1, 1000000))
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"amount":%d,"currency":"EUR","payer":"bench payer %d","payee":"bench payee","method":"card","reference":"B-%d-%d"}',
    (counter % 100000) + 1, thread_id, thread_id, counter)
  return wrk.format("POST", "/v1/payments", {["Content-Type"] = "application/json"}, body)
end
