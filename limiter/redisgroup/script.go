package redisgroup

import "github.com/redis/go-redis/v9"

// leaseScript is the one script a process runs per tick (and, at most
// once more in a tick, to top up). It is the single point of truth for
// the group's budget: Redis runs it atomically, so no two processes see
// the bucket between one's read and its write.
//
// KEYS[1] is the bucket, a hash: tick (the tick of the last refill), lr
// and lw (what the bucket holds now, per direction), sr and sw (what it
// held when the tick began). KEYS[2] holds one field per process: its id
// mapped to "expiry members activeRead activeWrite leaseTick leaseRead
// leaseWrite asked", expiry in microseconds of Redis's clock.
//
// ARGV: 1 id, 2 members, 3 active read, 4 active write, 5 used read since
// the last lease, 6 used write, 7 read rate, 8 read burst, 9 write rate,
// 10 write burst (bytes per tick), 11 tick in microseconds, 12 expiry in
// ticks, 13 top-up (1) or the tick's lease (0), 14 wanted read, 15
// wanted write (for a top-up).
//
// The script makes the bucket empty the first time (processes join a
// group at different times, and the first must not take a tick's budget
// the others then miss), refills it by whole ticks of Redis's TIME (never
// the clients' clocks), capped at the burst; takes back what this
// process's last lease did not use (the bytes stay in the bucket, as in
// an in-process group, where only consumed bytes are taken); drops
// processes whose entry expired; and grants this process its active
// members' share of what the bucket held when the tick began, by weight
// of active members over all live processes, capped by what the bucket
// still holds. A top-up grants, from what the bucket still holds less
// the shares of active processes that have not asked this tick, at most
// what the process wants. Every grant comes off the bucket, so the grants
// of one tick never add up to more than it held.
//
// It returns {tick, lease read, lease write, microseconds to the next
// tick, members in all processes, live processes, weight here read,
// weight in all read, weight here write, weight in all write}.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local id = ARGV[1]
local members = tonumber(ARGV[2])
local active = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local used = {tonumber(ARGV[5]), tonumber(ARGV[6])}
local rate = {tonumber(ARGV[7]), tonumber(ARGV[9])}
local burst = {tonumber(ARGV[8]), tonumber(ARGV[10])}
local tickUs = tonumber(ARGV[11])
local ttl = tonumber(ARGV[12]) * tickUs
local topup = ARGV[13] == '1'
local want = {tonumber(ARGV[14]), tonumber(ARGV[15])}
local tick = math.floor(now / tickUs)

local b = redis.call('HMGET', KEYS[1], 'tick', 'lr', 'lw', 'sr', 'sw')
local last = tonumber(b[1])
local lv = {tonumber(b[2]), tonumber(b[3])}
local st = {tonumber(b[4]), tonumber(b[5])}
if last == nil or lv[1] == nil or lv[2] == nil then
  last = tick
  lv = {0, 0}
  st = {0, 0}
elseif tick > last then
  local n = tick - last
  for d = 1, 2 do
    if lv[d] >= burst[d] or n >= burst[d] then
      lv[d] = burst[d]
    else
      lv[d] = math.min(lv[d] + n * rate[d], burst[d])
    end
    st[d] = lv[d]
  end
  last = tick
end

-- Live processes, this one's last lease, and the weights.
local all = redis.call('HGETALL', KEYS[2])
local mine = nil
local total, procs = 0, 0
local wall = {0, 0}
local pending = {0, 0}
for i = 1, #all, 2 do
  local f = {}
  for x in string.gmatch(all[i + 1], '%S+') do f[#f + 1] = tonumber(x) end
  if all[i] == id then
    mine = f
  elseif f[1] < now then
    redis.call('HDEL', KEYS[2], all[i])
  else
    procs = procs + 1
    total = total + f[2]
    for d = 1, 2 do
      wall[d] = wall[d] + f[2 + d]
      if f[8] < tick then pending[d] = pending[d] + f[2 + d] end
    end
  end
end
procs = procs + 1
total = total + members
for d = 1, 2 do wall[d] = wall[d] + active[d] end

-- Take back what the last lease did not use, if it was for an earlier
-- tick than the one now (a top-up's lease is settled with the next).
local leaseTick, lease = -1, {0, 0}
if mine ~= nil then leaseTick = mine[5]; lease = {mine[6], mine[7]} end
local asked = -1
if mine ~= nil then asked = mine[8] end
if not topup or asked < tick then
  for d = 1, 2 do
    local back = lease[d] - used[d]
    if back > 0 and leaseTick >= 0 then lv[d] = math.min(lv[d] + back, burst[d]) end
  end
  lease = {0, 0}
end

local grant = {0, 0}
for d = 1, 2 do
  local avail = math.max(lv[d], 0)
  if topup and asked == tick then
    local reserved = 0
    if wall[d] > 0 then reserved = math.floor(st[d] * pending[d] / wall[d]) end
    grant[d] = math.max(math.min(want[d], avail - reserved), 0)
  elseif wall[d] > 0 then
    grant[d] = math.min(math.floor(st[d] * active[d] / wall[d]), avail)
  end
  lv[d] = lv[d] - grant[d]
  lease[d] = lease[d] + grant[d]
end

redis.call('HSET', KEYS[1], 'tick', last, 'lr', lv[1], 'lw', lv[2], 'sr', st[1], 'sw', st[2])
redis.call('PEXPIRE', KEYS[1], math.floor((ttl + 60000000) / 1000))
redis.call('HSET', KEYS[2], id, string.format('%d %d %d %d %d %d %d %d', now + ttl, members, active[1], active[2], tick, lease[1], lease[2], tick))
redis.call('PEXPIRE', KEYS[2], math.floor((ttl + 60000000) / 1000))
local next = (tick + 1) * tickUs - now
return {tick, grant[1], grant[2], next, total, procs, active[1], wall[1], active[2], wall[2]}
`)
