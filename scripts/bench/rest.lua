-- wrk script of scripts/bench/rest.py: one kind of request, spread over many tasks and
-- users, with a JSON summary on stdout at the end.
--
--   wrk ... -s rest.lua -- <kind> <targets file>
--
-- kind: list | detail | patch | post. The targets file has one "<token> <task id>" per
-- line (the id is "-" where the kind needs none); each request picks a line at random.

local kind, targets = nil, {}
local counter = 0
local statuses = { "todo", "in_progress", "done" }
local thread_number = 0
local threads = {}

function setup(thread)
  thread_number = thread_number + 1
  thread:set("number", thread_number)
  table.insert(threads, thread)
end

function init(args)
  kind = args[1]
  for line in io.lines(args[2]) do
    local token, id = line:match("^(%S+) (%S+)$")
    table.insert(targets, { token = token, id = id })
  end
  math.randomseed(os.time() * 100 + (number or 0))
end

function request()
  local target = targets[math.random(#targets)]
  local headers = { ["Authorization"] = "Bearer " .. target.token }
  counter = counter + 1
  if kind == "list" then
    return wrk.format("GET", "/api/v1/tasks/?limit=50", headers)
  elseif kind == "detail" then
    return wrk.format("GET", "/api/v1/tasks/" .. target.id .. "/", headers)
  end
  headers["Content-Type"] = "application/json"
  local tag = string.format("%d-%d-%d", number or 0, counter, math.random(1000000))
  if kind == "patch" then
    local body = string.format('{"title": "changed %s", "status": "%s"}',
      tag, statuses[counter % 3 + 1])
    return wrk.format("PATCH", "/api/v1/tasks/" .. target.id .. "/", headers, body)
  end
  local body = string.format(
    '{"title": "created %s", "description": "Made by the benchmark, %s.",'
      .. ' "priority": "high", "due_at": "2027-01-15T09:00:00Z",'
      .. ' "metadata": {"source": "bench", "tag": "%s"}}',
    tag, tag, tag)
  return wrk.format("POST", "/api/v1/tasks/", headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d,'
      .. ' "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
