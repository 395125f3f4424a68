-- wrk script: POST /scim/v2/Users, one new user per request, as an identity
-- provider's initial sync does. Each thread stops after its share of USERS.
-- Globals, so that done() can read each thread's counts with thread:get().
counter = 0
created = 0
failed = 0
quota = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  token = args[2]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/scim+json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  counter = counter + 1
  local email = string.format("scim-%d-%d@bench.example.org", id, counter)
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s",' ..
    '"name":{"givenName":"Bench","familyName":"User %d-%d"},' ..
    '"emails":[{"primary":true,"type":"work","value":"%s"}],"active":true}',
    email, id, counter, email)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else failed = failed + 1 end
  if created + failed >= quota then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local total_created, total_failed = 0, 0
  for _, thread in ipairs(threads) do
    total_created = total_created + thread:get("created")
    total_failed = total_failed + thread:get("failed")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("created %d users (%d failed) in %.2f s: %.0f users/s, p50 %.1f ms, p99 %.1f ms\n",
    total_created, total_failed, seconds, total_created / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
