"""The Lua port of :class:`~plumasync.governor.core.state.GroupState` that :mod:`plumasync.governor.stores.redis` runs.

Kept apart from the store so that the two can be read side by side: every function below mirrors the
Python method of the same name, line for line, so that a decision made in Redis is the decision the
Python state would make (``tests/test_store_redis.py`` replays random sequences against both).

The state is one JSON string per group, the same document as ``GroupState.to_json()``.  Numbers are
written with ``%.17g`` (Redis' cjson encoder keeps only 14 digits, which would round Unix times to
0.1 ms and break the equivalence); cjson only decodes.
"""

from __future__ import annotations

__all__ = ["SCRIPT"]

SCRIPT = r"""
if redis.replicate_commands then pcall(redis.replicate_commands) end

local op = ARGV[1]

local function clock_now(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function num(x) return string.format('%.17g', x) end
local function opt(v) if v == nil or v == '' then return nil end return tonumber(v) end
local function nn(v) if v == cjson.null then return nil end return v end
local function jn(x) if x == nil then return 'null' end return num(x) end
local function jb(b) if b then return 'true' end return 'false' end

-- values and leases: a hash {v|o: value or owner, e: expiry in the store's clock} --------------------

if op == 'value_get' then
  local now = clock_now(ARGV[2])
  local item = redis.call('HMGET', KEYS[1], 'v', 'e')
  if not item[1] or tonumber(item[2]) <= now then return false end
  return item[1]
elseif op == 'value_set' then
  local now = clock_now(ARGV[2])
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 'e', num(now + tonumber(ARGV[4])))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
elseif op == 'claim' then
  local now = clock_now(ARGV[2])
  local held = redis.call('HMGET', KEYS[1], 'o', 'e')
  if held[1] and held[1] ~= ARGV[3] and tonumber(held[2]) > now then return 0 end
  redis.call('HSET', KEYS[1], 'o', ARGV[3], 'e', num(now + tonumber(ARGV[4])))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
elseif op == 'release' then
  if redis.call('HGET', KEYS[1], 'o') == ARGV[2] then redis.call('DEL', KEYS[1]) end
  return 1
end

-- group state: ARGV = op, now, limit, window, reserve, margin, ttl_ms, op arguments... -----------------

local now = clock_now(ARGV[2])
local P = {limit = tonumber(ARGV[3]), window = tonumber(ARGV[4]), reserve = tonumber(ARGV[5]),
           margin = tonumber(ARGV[6])}
local ttl_ms = ARGV[7]

local function load()
  local raw = redis.call('GET', KEYS[1])
  if not raw then
    return {limit = P.limit, window = P.window, mode = 'cold', permits = {}, log = {}, used = 0,
            contended = false, admitted = 0, throttled = 0}
  end
  local d = cjson.decode(raw)
  local permits = {}
  for p, t in pairs(d.permits) do permits[p] = t end
  local log = {}
  for i, t in ipairs(d.log) do log[i] = t end
  return {limit = d.limit, window = d.window, mode = d.mode, remaining = nn(d.remaining),
          reset = nn(d.reset), reset_local = nn(d.reset_local), offset = nn(d.offset),
          paused_until = nn(d.paused_until), permits = permits, log = log, used = d.used,
          contended = d.contended, admitted = d.admitted, throttled = d.throttled}
end

local function save(s)
  local permits = {}
  for p, t in pairs(s.permits) do permits[#permits + 1] = cjson.encode(p) .. ':' .. num(t) end
  local log = {}
  for i, t in ipairs(s.log) do log[i] = num(t) end
  local doc = '{"limit":' .. num(s.limit) .. ',"window":' .. num(s.window) ..
    ',"mode":' .. cjson.encode(s.mode) .. ',"remaining":' .. jn(s.remaining) ..
    ',"reset":' .. jn(s.reset) .. ',"reset_local":' .. jn(s.reset_local) ..
    ',"offset":' .. jn(s.offset) .. ',"paused_until":' .. jn(s.paused_until) ..
    ',"permits":{' .. table.concat(permits, ',') .. '},"log":[' .. table.concat(log, ',') ..
    '],"used":' .. num(s.used) .. ',"contended":' .. jb(s.contended) ..
    ',"admitted":' .. num(s.admitted) .. ',"throttled":' .. num(s.throttled) .. '}'
  redis.call('SET', KEYS[1], doc, 'PX', ttl_ms)
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function expire(s)
  local cutoff = now - s.window
  for p, t in pairs(s.permits) do
    if t <= cutoff then s.permits[p] = nil end
  end
end

local function roll(s)
  if s.mode ~= 'headers' or s.reset_local == nil then return end
  if now < s.reset_local + P.margin then return end
  local windows = math.max(1, math.floor((now - s.reset_local - P.margin) / s.window) + 1)
  s.reset = s.reset + windows * s.window
  s.reset_local = s.reset_local + windows * s.window
  s.used = 0
  if s.contended then s.remaining = nil else s.remaining = s.limit end
end

local function reserve(s, lane)
  if lane == 'interactive' then return 0 end
  if s.limit ~= P.limit and P.limit > 0 then
    return math.min(s.limit - 1, math.ceil(P.reserve * s.limit / P.limit))
  end
  return math.min(P.reserve, math.max(0, s.limit - 1))
end

local function grant(s, permit)
  s.permits[permit] = now
  s.admitted = s.admitted + 1
  if s.mode ~= 'headers' then  -- the sliding log serves only headerless groups (and the probe)
    s.log[#s.log + 1] = now
    if #s.log > s.limit then
      local keep = {}
      for i = #s.log - s.limit + 1, #s.log do keep[#keep + 1] = s.log[i] end
      s.log = keep
    end
  end
  return {1, '', num(now)}
end

local function deny(retry_at)
  if retry_at == nil then return {0, '', num(now)} end
  return {0, num(retry_at), num(now)}
end

local function probing(s)
  if s.mode == 'cold' or s.reset_local == nil then return next(s.permits) ~= nil end
  local window_start = s.reset_local - s.window
  for _, t in pairs(s.permits) do
    if t >= window_start then return true end
  end
  return false
end

local function acquire_sliding(s, res, permit)
  local horizon = now - s.window - P.margin
  local recent = {}
  for _, t in ipairs(s.log) do
    if t > horizon then recent[#recent + 1] = t end
  end
  s.log = recent
  local allowed = s.limit - res
  if #recent < allowed then return grant(s, permit) end
  local oldest_blocking = recent[#recent - allowed + 1]
  return deny(oldest_blocking + s.window + P.margin)
end

local function acquire(s, lane, permit)
  expire(s)
  if s.paused_until ~= nil then
    if now < s.paused_until then return deny(s.paused_until) end
    s.paused_until = nil
  end
  roll(s)
  local res = reserve(s, lane)
  if s.mode == 'headerless' then return acquire_sliding(s, res, permit) end
  if s.mode == 'cold' or s.remaining == nil then
    if probing(s) then return deny(nil) end
    return grant(s, permit)
  end
  local available = s.remaining - count(s.permits) - res
  if available > 0 then return grant(s, permit) end
  if s.reset_local == nil then return deny(nil) end
  return deny(s.reset_local + P.margin)
end

local function update_offset(s, admitted_at, received_at, date)
  if date == nil then
    if s.offset == nil then s.offset = 0.0 end
    return
  end
  local low = date - received_at
  local high = date + 1.0 - admitted_at
  if s.offset == nil or high < s.offset then
    s.offset = low
  else
    s.offset = math.max(s.offset, low)
  end
end

local function observe_headers(s, admitted_at, status, h)
  update_offset(s, admitted_at, now, h.date)
  if s.mode ~= 'headers' then
    s.mode = 'headers'
    s.reset = nil
    s.log = {}
  end
  s.limit = math.max(1, h.limit)
  local remaining = math.max(0, h.remaining)
  if s.reset == nil or h.reset > s.reset + 0.5 then
    s.reset = h.reset
    s.remaining = remaining
    s.used = 1
    s.contended = remaining < s.limit - 1 - count(s.permits)
  elseif h.reset > s.reset - 0.5 then
    s.used = s.used + 1
    if s.remaining == nil then s.remaining = remaining else s.remaining = math.min(s.remaining, remaining) end
    if remaining < s.limit - s.used - count(s.permits) then
      s.contended = true
    elseif s.used == 1 and remaining >= s.limit - 1 then
      s.contended = false
    end
  end
  s.reset_local = s.reset - s.offset
  if status == 429 then
    s.throttled = s.throttled + 1
    s.remaining = 0
    s.contended = true
    s.paused_until = s.reset_local + P.margin
  end
end

local function observe_headerless(s, admitted_at, status)
  if s.mode == 'cold' and status ~= nil then s.mode = 'headerless' end
  if s.mode == 'headers' and s.remaining ~= nil then
    local window_start = (s.reset_local or now) - s.window
    if admitted_at >= window_start then s.remaining = math.max(0, s.remaining - 1) end
  end
  if status == 429 then
    s.throttled = s.throttled + 1
    s.paused_until = now + s.window
    if s.mode == 'headers' then s.remaining = 0 end
  end
end

local function snapshot(s)
  expire(s)
  roll(s)
  local remaining, reset_at, available
  if s.mode == 'headerless' then
    local n = 0
    for _, t in ipairs(s.log) do
      if t > now - s.window then n = n + 1 end
    end
    remaining = math.max(0, s.limit - n)
    if remaining == 0 and #s.log > 0 then reset_at = s.log[1] + s.window + P.margin end
    available = remaining
  else
    remaining = s.remaining
    if s.reset_local ~= nil then reset_at = s.reset_local + P.margin end
    if remaining ~= nil then available = math.max(0, remaining - count(s.permits)) end
  end
  local paused = nil
  if s.paused_until ~= nil and s.paused_until > now then paused = s.paused_until end
  return '{"mode":' .. cjson.encode(s.mode) .. ',"limit":' .. num(s.limit) .. ',"window":' .. num(s.window) ..
    ',"remaining":' .. jn(remaining) .. ',"available":' .. jn(available) ..
    ',"in_flight":' .. num(count(s.permits)) .. ',"reset_at":' .. jn(reset_at) ..
    ',"paused_until":' .. jn(paused) .. ',"contended":' .. jb(s.contended) ..
    ',"admitted":' .. num(s.admitted) .. ',"throttled":' .. num(s.throttled) .. '}'
end

if op == 'acquire' then
  local s = load()
  local decision = acquire(s, ARGV[8], ARGV[9])
  save(s)
  return decision
elseif op == 'observe' then
  local s = load()
  local permit = ARGV[8]
  local admitted_at = s.permits[permit]
  s.permits[permit] = nil
  if admitted_at == nil then admitted_at = now end
  local status = opt(ARGV[9])
  local h = {limit = opt(ARGV[10]), remaining = opt(ARGV[11]), reset = opt(ARGV[12]), date = opt(ARGV[13])}
  if h.limit ~= nil and h.remaining ~= nil and h.reset ~= nil then
    observe_headers(s, admitted_at, status, h)
  else
    observe_headerless(s, admitted_at, status)
  end
  save(s)
  return num(now)
elseif op == 'cancel' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  local s = load()
  local permit = ARGV[8]
  local admitted_at = s.permits[permit]
  if admitted_at == nil then return 0 end
  s.permits[permit] = nil
  s.admitted = math.max(0, s.admitted - 1)
  for i, t in ipairs(s.log) do
    if t == admitted_at then
      table.remove(s.log, i)
      break
    end
  end
  save(s)
  return 1
elseif op == 'snapshot' then
  local s = load()
  local doc = snapshot(s)
  save(s)
  return {doc, num(now)}
elseif op == 'absorb' then
  -- Admissions made while Redis was unreachable (ARGV[8..], the caller's clock): count them here.
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  local s = load()
  local n = 0
  if s.mode == 'headers' and s.remaining ~= nil and s.reset_local ~= nil then
    local window_start = s.reset_local - s.window
    for i = 8, #ARGV do
      if tonumber(ARGV[i]) >= window_start then n = n + 1 end
    end
    s.remaining = math.max(0, s.remaining - n)
  elseif s.mode == 'headerless' then
    for i = 8, #ARGV do
      s.log[#s.log + 1] = tonumber(ARGV[i])
      n = n + 1
    end
    table.sort(s.log)
    if #s.log > s.limit then
      local keep = {}
      for i = #s.log - s.limit + 1, #s.log do keep[#keep + 1] = s.log[i] end
      s.log = keep
    end
  end
  save(s)
  return n
end
return redis.error_reply('plumasync: unknown operation ' .. tostring(op))
"""
