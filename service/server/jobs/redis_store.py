"""The shared queue's job state in Redis: key names and the atomic state changes (Lua scripts).

Dramatiq carries only "run job <id>" messages (``redis_worker.py``); everything a replica shows about a
job lives here, under ``<prefix>:`` keys, and every change of state is one Lua script, so two replicas or
two workers can never both move a job (a cancel racing a start, a lost worker's job claimed twice):

| key | type | holds |
|---|---|---|
| ``job:<id>`` | hash | kind, owner, state, created / started / finished (epoch s), attempts, lost, worker, deadline, cancel (a pending cancel's reason), progress, error, duration, result metadata |
| ``job:<id>:ev`` | stream | the job's events (``e``: JSON), capped near ``HISTORY`` entries |
| ``job:<id>:in`` | hash | the ``JobSpec`` (inputs), deleted once the job has ended |
| ``job:<id>:out`` | string | the result bytes, stored once (never in an event) |
| ``job:<id>:pv`` | string | the latest preview JPEG (events only say that one exists) |
| ``tomb:<id>`` | string | an ended job's owner, kept longer than its result, to tell "expired" from "never existed" |
| ``queued`` | sorted set | waiting job ids by the time they (re)entered the queue |
| ``running`` | hash | running job id -> worker id |
| ``workers`` | sorted set | worker id -> its lease: last heartbeat + its ``heartbeat_s`` (epoch s) |
| ``owner:<key>`` | set | an API key's queued and running jobs (the per-key cap) |

Every job key has a TTL: while active ``result_ttl_s + max_runtime_s`` (renewed at each start), once ended
``result_ttl_s``. Each worker renews a lease in ``workers`` (``atelier worker --heartbeat-s``, so API
replicas need no setting of their own); a worker whose lease ran out is lost, its running job goes back
to ``queued`` (``lost`` + 1), or fails once it has been lost ``max_attempts`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

HISTORY = 256  # stream entries kept per job (as the in-process job's replay history)
DEFAULT_HEARTBEAT_S = 15.0  # `atelier worker --heartbeat-s`: silent this long, a worker is lost
TOMB_FACTOR = 24  # an ended job's id is remembered this many result TTLs

# Shared by the scripts: the one way a job ends (owner released, queues left, inputs and preview dropped,
# TTLs shortened, tombstone written, terminal event added). ARGV[1] is always the key prefix.
_COMMON = """
local P = ARGV[1]
local function k(id, suffix) return P .. ':job:' .. id .. (suffix or '') end
local TERMINAL = {succeeded=true, failed=true, cancelled=true, deadline_exceeded=true}
local function event(id, fields)
  redis.call('xadd', k(id, ':ev'), 'MAXLEN', '~', HISTORY, '*', 'e', cjson.encode(fields))
end
local function finish(id, state, err, now, ttl, extra)
  local job = k(id)
  local owner = redis.call('hget', job, 'owner') or ''
  local started = tonumber(redis.call('hget', job, 'started') or '')
  local duration = 0
  if started then duration = now - started end
  redis.call('hset', job, 'state', state, 'finished', now, 'error', err, 'cancel', '')
  redis.call('hset', job, 'duration', duration)
  redis.call('zrem', P .. ':queued', id)
  redis.call('hdel', P .. ':running', id)
  if owner ~= '' then redis.call('srem', P .. ':owner:' .. owner, id) end
  redis.call('del', k(id, ':in'), k(id, ':pv'))
  for _, s in ipairs({'', ':ev', ':out'}) do redis.call('expire', k(id, s), ttl) end
  redis.call('set', P .. ':tomb:' .. id, owner, 'EX', ttl * TOMB_FACTOR)
  local fields = {state=state, finished=now, duration=duration, error=err}
  if extra then for key, v in pairs(extra) do fields[key] = v end end
  event(id, fields)
end
local function alive(worker, now)
  local lease = tonumber(redis.call('zscore', P .. ':workers', worker) or '')
  return lease ~= nil and lease >= now
end
""".replace("HISTORY", str(HISTORY)).replace("TOMB_FACTOR", str(TOMB_FACTOR))

# ARGV: prefix, id, kind, owner, now, deadline ('' = none), active ttl, queue limit, owner limit, then
# field/value pairs of the input hash. Returns {'ok'} | {'full', waiting} | {'owner', held}.
SUBMIT = """
local id, kind, owner, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local ttl, limit, per_owner = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local waiting = redis.call('zcard', P .. ':queued')
if waiting >= limit then return {'full', waiting} end
if owner ~= '' and per_owner > 0 then
  local set = P .. ':owner:' .. owner
  for _, other in ipairs(redis.call('smembers', set)) do  -- ids whose job expired no longer count
    if redis.call('exists', k(other)) == 0 then redis.call('srem', set, other) end
  end
  local held = redis.call('scard', set)
  if held >= per_owner then return {'owner', held} end
  redis.call('sadd', set, id)
end
redis.call('hset', k(id), 'kind', kind, 'owner', owner, 'state', 'queued', 'created', now,
  'attempts', 0, 'lost', 0, 'deadline', ARGV[6], 'cancel', '')
if #ARGV > 9 then redis.call('hset', k(id, ':in'), unpack(ARGV, 10)) end
redis.call('zadd', P .. ':queued', now, id)
for _, s in ipairs({'', ':ev', ':in'}) do redis.call('expire', k(id, s), ttl) end
event(id, {state='queued', created=now})
return {'ok'}
"""

# ARGV: prefix, id, worker, now, the worker's heartbeat_s, max attempts, active ttl, lost-error JSON.
# Returns {'run', attempt} | {'missing'} | {'done'} | {'busy'} (a live worker runs it) | {'failed'}.
CLAIM = """
local id, worker, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local job = k(id)
local state = redis.call('hget', job, 'state')
if not state then return {'missing'} end
if TERMINAL[state] then return {'done'} end
if state == 'running' then
  local other = redis.call('hget', job, 'worker') or ''
  if other == worker or alive(other, now) then return {'busy'} end
  local lost = redis.call('hincrby', job, 'lost', 1)
  if lost >= tonumber(ARGV[6]) then
    finish(id, 'failed', ARGV[8], now, tonumber(ARGV[7]))
    return {'failed'}
  end
end
local attempt = redis.call('hincrby', job, 'attempts', 1)
-- A worker that claims a job is alive: renew its lease here, or a monitor could find the job running on a
-- worker without one (Redis restarted empty, before the worker's next heartbeat) and supersede it.
local lease = now + tonumber(ARGV[5])
local held = tonumber(redis.call('zscore', P .. ':workers', worker) or '0')
if lease > held then redis.call('zadd', P .. ':workers', lease, worker) end
redis.call('hset', job, 'state', 'running', 'worker', worker, 'started', now)
redis.call('zrem', P .. ':queued', id)
redis.call('hset', P .. ':running', id, worker)
for _, s in ipairs({'', ':ev', ':in'}) do redis.call('expire', k(id, s), tonumber(ARGV[7])) end
event(id, {state='running', started=now, attempt=attempt})
return {'run', attempt}
"""

# ARGV: prefix, id, worker, attempt, event JSON, progress JSON. Returns 'ok' | 'cancel:<reason>' |
# 'gone' (no such job: Redis lost it) | 'superseded' (ended, or another attempt owns it).
PROGRESS = """
local id, job = ARGV[2], k(ARGV[2])
local state = redis.call('hget', job, 'state')
if not state then return 'gone' end
if state ~= 'running' or redis.call('hget', job, 'worker') ~= ARGV[3]
   or redis.call('hget', job, 'attempts') ~= ARGV[4] then return 'superseded' end
redis.call('hset', job, 'progress', ARGV[6])
redis.call('xadd', k(id, ':ev'), 'MAXLEN', '~', HISTORY, '*', 'e', ARGV[5])
local reason = redis.call('hget', job, 'cancel') or ''
if reason ~= '' then return 'cancel:' .. reason end
return 'ok'
""".replace("HISTORY", str(HISTORY))

# ARGV: prefix, id, state, error JSON, now, ttl, result metadata JSON, result bytes ('' = none).
# The first attempt to end a job wins; a later one (a lost worker that came back) changes nothing.
FINISH = """
local id = ARGV[2]
local state = redis.call('hget', k(id), 'state')
if not state then return 'gone' end
if TERMINAL[state] then return 'done' end
if ARGV[8] ~= '' then redis.call('set', k(id, ':out'), ARGV[8]) end
redis.call('hset', k(id), 'result', ARGV[7])
finish(id, ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), {result=ARGV[7]})
return 'ok'
"""

# ARGV: prefix, id, reason, cancelled-error JSON, now, ttl. A queued job ends at once; a running one gets
# the flag its worker reads on its next progress report or heartbeat. Returns the job's state then.
CANCEL = """
local id = ARGV[2]
local state = redis.call('hget', k(id), 'state')
if not state then return 'missing' end
if TERMINAL[state] then return state end
if state == 'queued' then
  finish(id, 'cancelled', ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
  return 'cancelled'
end
redis.call('hset', k(id), 'cancel', ARGV[3])
return 'running'
"""

# ARGV: prefix, id, worker, now, note. A draining worker hands its running job back to the queue.
REQUEUE = """
local id, job = ARGV[2], k(ARGV[2])
if redis.call('hget', job, 'state') ~= 'running' or redis.call('hget', job, 'worker') ~= ARGV[3] then
  return 0
end
local now = tonumber(ARGV[4])
redis.call('hset', job, 'state', 'queued', 'worker', '')
redis.call('hdel', P .. ':running', id)
redis.call('zadd', P .. ':queued', now, id)
event(id, {state='queued', note=ARGV[5]})
return 1
"""

# ARGV: prefix, now, (unused), max attempts, ttl, lost-error JSON, note. Every running job whose
# worker's lease ran out goes back to the queue (or fails after max attempts). Returns ids changed.
REAP = """
local now, max = tonumber(ARGV[2]), tonumber(ARGV[4])
local running = redis.call('hgetall', P .. ':running')
local changed = {}
for i = 1, #running, 2 do
  local id, worker = running[i], running[i + 1]
  local job = k(id)
  if redis.call('hget', job, 'state') ~= 'running' then
    redis.call('hdel', P .. ':running', id)
  elseif not alive(worker, now) then
    redis.call('hdel', P .. ':running', id)
    local lost = redis.call('hincrby', job, 'lost', 1)
    if lost >= max then
      finish(id, 'failed', ARGV[6], now, tonumber(ARGV[5]))
    else
      redis.call('hset', job, 'state', 'queued', 'worker', '')
      redis.call('zadd', P .. ':queued', now, id)
      event(id, {state='queued', note=ARGV[7], lost=lost})
    end
    table.insert(changed, id)
  end
end
redis.call('zremrangebyscore', P .. ':workers', 0, now - 3600)  -- workers gone for an hour
return changed
"""

SCRIPTS: dict[str, str] = {
    name: _COMMON + body
    for name, body in {
        "submit": SUBMIT,
        "claim": CLAIM,
        "progress": PROGRESS,
        "finish": FINISH,
        "cancel": CANCEL,
        "requeue": REQUEUE,
        "reap": REAP,
    }.items()
}


@dataclass(frozen=True)
class QueueConfig:
    """The shared queue's settings as plain values (``Settings.queue_*`` and the job limits)."""

    url: str
    max_attempts: int  # a job whose worker was lost this many times fails
    queue_limit: int  # jobs waiting in the shared queue before RESOURCE_EXHAUSTED
    jobs_per_key: int
    max_runtime_s: float
    result_ttl_s: float
    heartbeat_s: float = DEFAULT_HEARTBEAT_S  # a worker's lease (and Dramatiq's heartbeat timeout)
    prefix: str = "atelier"
    queue_name: str = "atelier-jobs"  # the Dramatiq queue
    namespace: str = "atelier-dramatiq"  # the Dramatiq broker's key prefix

    @property
    def active_ttl_s(self) -> int:
        return int(self.result_ttl_s + self.max_runtime_s) + 1

    @property
    def ttl_s(self) -> int:
        return int(self.result_ttl_s) + 1

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def job_key(self, job_id: str, suffix: str = "") -> str:
        return f"{self.prefix}:job:{job_id}{suffix}"

    def where(self) -> str:
        """The server's address for messages, without any password the URL may hold."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
