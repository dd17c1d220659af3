"""The only Lua :mod:`plumasync.governor.stores.redis` runs: shared values and owner-checked leases.

Budget rules are not here: group states are read, changed by the pure
:class:`~plumasync.governor.core.state.GroupState` transitions and written back under WATCH/MULTI.  A value or
lease is one hash ``{v|o: value or owner, e: expiry in the store's clock}``; a lease must be taken and
checked in one step, which is what these few lines do.
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

return redis.error_reply('plumasync: unknown operation ' .. tostring(op))
"""
