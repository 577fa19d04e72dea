-- wrk: GET one of the preloaded payments, chosen at random.
local rows = tonumber(os.getenv("BENCH_ROWS") or "100000")

request = function()
  local n = math.random(1, rows)
  return wrk.format("GET", string.format("/v1/payments/00000000-0000-0000-0000-%012d", n))
end
