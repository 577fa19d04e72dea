-- wrk: prepended to every script; sends the bench token when one is set
-- (the server as deployed requires it).
local bench_token = os.getenv("BENCH_TOKEN")
if bench_token and bench_token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bench_token
end
