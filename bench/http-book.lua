-- wrk script of bench/http.sh for `flashsale serve --auth header`: POST {} to
-- /booking-service/book-item/$SALE as user u<random 1..10,000,000> in the gateway's header
-- ($USER_HEADER, X-User by default). The anchors' post-user-header.lua, but with the
-- Content-Type in the request's own headers: wrk.format uses the headers it is given
-- instead of wrk.headers, so that script's requests carry no Content-Type, and a body
-- without one is 415 (http.md).
wrk.method = "POST"
local path = "/booking-service/book-item/" .. (os.getenv("SALE") or "s1")
local header = os.getenv("USER_HEADER") or "X-User"

local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
end

function request()
  return wrk.format(nil, path, { ["Content-Type"] = "application/json", [header] = "u" .. math.random(1, 10000000) }, "{}")
end
