package redisgroup

import "github.com/redis/go-redis/v9"

// Modes of the script.
const (
	modeLease    = 0 // the tick's lease
	modeTopUp    = 1 // more, from what the others left
	modeGiveBack = 2 // return what this process will not use this tick
)

// leaseScript is the script a process runs at every tick, and at most
// twice more within a tick (a give-back and a top-up). It is the single
// point of truth for the group's budget: Redis runs it atomically, so no
// two processes see the bucket between one's read and its write.
//
// KEYS[1] is the bucket, a hash: tick (of the last refill); lr and lw,
// what is available now per direction; sr and sw, what was available
// when the tick began; gr and gw, what was granted in this tick, less
// what was given back. Available is a token bucket of the group's config:
// refilled by the rate per whole tick, capped at the burst. A grant counts
// as used at once; what a lease did not use comes back when the process
// settles it, but never takes available plus this tick's grants over the
// burst, so a tick's grants never add up to more than one bucket. KEYS[2] holds
// one field per process: its id mapped to "expiry members activeRead
// activeWrite asked leaseRead leaseWrite holdRead holdWrite", expiry in
// microseconds of Redis's clock, asked the tick of its last lease and the
// hold what it may grant itself per tick while it has lost Redis (0 but
// under Bounded; an entry without it holds nothing).
//
// ARGV: 1 id, 2 members, 3 active read, 4 active write, 5 used read since
// the last lease, 6 used write, 7 read rate, 8 read burst, 9 write rate,
// 10 write burst (bytes per tick), 11 tick in microseconds, 12 expiry in
// ticks, 13 mode, 14 and 15: per direction, what a top-up wants or what
// a give-back returns; 16 and 17, the process's hold per direction; 18,
// only from tests, the time in microseconds, which replaces Redis's
// TIME.
//
// The tick comes from Redis's TIME, never the clients' clocks. A new
// bucket starts empty: processes join a group at different times, and the
// first must not take a tick's budget the others then miss. Expired
// processes are dropped (their leases count as used). A process's weight
// in a direction is its members if any of them is active there (moved
// bytes in the last lease or waits now), else 0: idle processes leave the
// budget to the busy ones, and among busy ones the budget goes by member,
// as an in-process group's does.
//
// The tick's lease settles the last one (what it did not use becomes
// available again) and grants the process its weight's share of what was
// available when the tick began, capped by what is available now. A
// give-back makes bytes of the current lease available again. A top-up
// grants, up to what is wanted, what is available less the shares of
// the weighted processes that have not had their lease this tick (and
// less what is kept for the fenced ones, below). Every grant comes off
// what is available. A top-up or give-back that arrives
// after its tick has ended (by Redis's clock) changes nothing and grants
// nothing: the process's next lease settles what it used and left.
//
// A tick's lease also reports the process's share of the tick of its
// last lease, if that tick has ended and no other tick has begun since
// (by Redis's clock): what Redis granted the process in that tick (its
// lease, plus top-ups, less give-backs) over what the tick held when it
// ended, or what it granted if that is more, in millionths. The
// processes' grants in a tick add up to what the tick granted, so their
// shares of one tick add up to at most one, whatever order they asked
// in and whatever the entries said when each asked. The bucket keeps
// the last tick that ended for that (pt; psr and psw, what it held; pgr
// and pgw, what it granted). A share asked for in its own tick by each
// process, against what the tick held at that moment, did not: a
// process that asked first, by an entry that still counted another's
// members before three more joined it, was granted half of what the
// tick held then, and the other, settling the half of its last lease it
// left, five eighths of what the tick held after.
//
// A process with a hold (the Bounded policy) is fenced: in every tick that
// begins while its entry lives and in which it has not asked, it may be
// granting itself its hold, from its own clock, having lost Redis. Until
// it asks in the tick, the others' leases and top-ups leave it its share
// by weight or its hold, whichever is more. When the tick has ended
// without it asking, its hold counts as granted in that tick: it comes off
// what is available, so that what was kept for it does not pile up in the
// bucket for the others' next leases (with a burst over the rate, it did:
// TestScriptPendingShare). Its entry's expiry (ARGV[12]) outlasts the
// ticks it may grant itself in (see Store.fenceMargin). The lease it
// settles when it is back gives nothing back: its tick is long over, and
// what it used of it was lost with the runs that failed.
//
// It returns {tick, lease read, lease write, microseconds to the next
// tick, members in all processes, live processes, what the tick held at
// its start per direction (read, write; 0 from a late top-up or
// give-back), the tick of the share reported (-1: none), the share per
// direction in millionths (-1: none)}.
var leaseScript = redis.NewScript(`
local now
if ARGV[18] then
  now = tonumber(ARGV[18])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local id = ARGV[1]
local members = tonumber(ARGV[2])
local active = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local used = {tonumber(ARGV[5]), tonumber(ARGV[6])}
local rate = {tonumber(ARGV[7]), tonumber(ARGV[9])}
local burst = {tonumber(ARGV[8]), tonumber(ARGV[10])}
local tickUs = tonumber(ARGV[11])
local ttl = tonumber(ARGV[12]) * tickUs
local mode = tonumber(ARGV[13])
local amount = {tonumber(ARGV[14]), tonumber(ARGV[15])}
local hold = {tonumber(ARGV[16]), tonumber(ARGV[17])}
local tick = math.floor(now / tickUs)

local b = redis.call('HMGET', KEYS[1], 'tick', 'lr', 'lw', 'sr', 'sw', 'gr', 'gw', 'pt', 'psr', 'psw', 'pgr', 'pgw')
local last = tonumber(b[1])
local lv = {tonumber(b[2]), tonumber(b[3])}
local st = {tonumber(b[4]), tonumber(b[5])}
local gt = {tonumber(b[6]), tonumber(b[7])}
-- The tick before last's, as it ended: what it held, what it granted.
local pt = tonumber(b[8])
local ps = {tonumber(b[9]), tonumber(b[10])}
local pg = {tonumber(b[11]), tonumber(b[12])}
if last == nil or lv[1] == nil or lv[2] == nil or gt[1] == nil or gt[2] == nil then
  last = tick
  lv = {0, 0}
  st = {0, 0}
  gt = {0, 0}
end
if pt == nil or ps[1] == nil or ps[2] == nil or pg[1] == nil or pg[2] == nil then
  pt = -1
  ps = {0, 0}
  pg = {0, 0}
end

-- Live processes and their weights; expired ones are dropped. A fenced
-- one (with a hold) lives to the end of the tick its expiry falls in:
-- the ticks it lives in are those its hold is kept in. The fenced, this
-- one too, are kept in fenced, even expired: the ticks that ended since
-- the last refill may be theirs (see the refill); those that live and
-- have not asked in this tick in waiting.
local all = redis.call('HGETALL', KEYS[2])
local mine = nil
local total, procs = 0, 0
local wall = {0, 0}
local pending = {0, 0}
local fenced, waiting = {}, {}
for i = 1, #all, 2 do
  local f = {}
  for x in string.gmatch(all[i + 1], '%S+') do f[#f + 1] = tonumber(x) end
  f[8], f[9] = f[8] or 0, f[9] or 0
  local holds = f[8] > 0 or f[9] > 0
  local expired = f[1] < now
  if holds then
    fenced[#fenced + 1] = f
    expired = f[1] < tick * tickUs
  end
  if all[i] == id then
    mine = f
  elseif expired then
    redis.call('HDEL', KEYS[2], all[i])
  else
    procs = procs + 1
    total = total + f[2]
    if holds and f[5] < tick then waiting[#waiting + 1] = f end
    for d = 1, 2 do
      if f[2 + d] > 0 then
        wall[d] = wall[d] + f[2]
        if f[5] < tick and not holds then pending[d] = pending[d] + f[2] end
      end
    end
  end
end
procs = procs + 1
total = total + members
local wme = {0, 0}
for d = 1, 2 do
  if active[d] > 0 then wme[d] = members end
  wall[d] = wall[d] + wme[d]
end

-- What the fenced processes may have granted themselves in tick j, in
-- direction d: the holds of those whose entry lived when j began and
-- that did not ask in it.
local function heldIn(j, d)
  local n = 0
  for _, f in ipairs(fenced) do
    if f[5] < j and j * tickUs <= f[1] then n = n + f[7 + d] end
  end
  return n
end
-- The last tick a fenced process's entry lived in.
local heldTo = -1
for _, f in ipairs(fenced) do heldTo = math.max(heldTo, math.floor(f[1] / tickUs)) end

-- Refill by whole ticks, capped at the burst. The tick that ends is
-- kept as it ended, for the shares of the processes that had a lease in
-- it. Each tick that ended takes the holds of the fenced processes that
-- did not ask in it, as grants of its own: one by one while a fenced
-- entry lived (at most its expiry's ticks), the rest at once.
if tick > last then
  pt = last
  for d = 1, 2 do
    local h = heldIn(last, d)
    lv[d] = lv[d] - h
    ps[d] = st[d]
    pg[d] = gt[d] + h
  end
  local j = last + 1
  while j < tick and j <= heldTo do
    for d = 1, 2 do lv[d] = math.min(lv[d] + rate[d], burst[d]) - heldIn(j, d) end
    j = j + 1
  end
  local n = tick - j + 1
  for d = 1, 2 do
    if lv[d] < burst[d] then
      if n >= burst[d] then
        lv[d] = burst[d]
      else
        lv[d] = math.min(lv[d] + n * rate[d], burst[d])
      end
    end
    st[d] = lv[d]
    gt[d] = 0
  end
  last = tick
end

-- What leases and top-ups keep for the fenced processes that have not
-- asked in this tick (the others' pending shares are reserved by
-- weight: by the lease's share, by reserved in a top-up): each one's
-- share by weight of what the tick held, or its hold if that is more.
-- (A hold is an average of what the process was granted, top-ups
-- included: a process that asks before one whose hold is above its
-- share by weight gets less than its own share in its lease, and the
-- rest, if its members still wait, in its top-up.)
local kept = {0, 0}
for _, f in ipairs(waiting) do
  for d = 1, 2 do
    local w = 0
    if f[2 + d] > 0 and wall[d] > 0 then w = math.floor(st[d] * f[2] / wall[d]) end
    kept[d] = kept[d] + math.max(w, f[7 + d])
  end
end

-- A process Redis has no entry for (new, expired, or Redis restarted
-- without its data) has no lease to settle: its use is not charged.
local asked, lease = -1, {0, 0}
if mine ~= nil then asked = mine[5]; lease = {mine[6], mine[7]} else used = {0, 0} end
-- A fenced process back after a tick or more gives nothing back: the
-- ticks since took its hold.
local fence = mine ~= nil and asked < tick - 1 and (mine[8] > 0 or mine[9] > 0)
-- A top-up or give-back for a tick that has ended (the process was held
-- back) changes nothing: the tick's lease, which follows, settles the
-- bytes used and what the members left, once.
if mode ~= 0 and asked < tick then
  return {tick, 0, 0, (tick + 1) * tickUs - now, total, procs, 0, 0, -1, -1, -1}
end

-- The process's share of the tick of its last lease, if that tick has
-- ended and was the last one before this: what it was granted in it
-- (the lease, plus top-ups, less give-backs) over what the tick held in
-- the end, or granted if more (a debt settled after a grant shrinks
-- what it held). Every process's grants in a tick add up to what the
-- tick granted, so their shares of it add up to at most one.
local shareTick, share = -1, {-1, -1}
if mode == 0 and asked == pt and asked < tick then
  shareTick = asked
  for d = 1, 2 do
    local held = math.max(ps[d], pg[d])
    share[d] = 0
    if held > 0 then
      share[d] = math.min(math.floor(1000000 * math.max(lease[d], 0) / held), 1000000)
    end
  end
end

local grant = {0, 0}
if mode == 0 then
  for d = 1, 2 do
    -- Settle: what was not used is available again, up to the burst
    -- less this tick's grants; more used than leased is a debt.
    -- What comes back counts as held when the tick began, so this and
    -- later leases share it.
    local back = lease[d] - used[d]
    if fence then back = math.min(back, 0) end
    local before = lv[d]
    if back < 0 then
      lv[d] = lv[d] + back
    elseif lv[d] + back + gt[d] <= burst[d] then
      lv[d] = lv[d] + back
    else
      lv[d] = math.max(lv[d], burst[d] - gt[d])
    end
    st[d] = math.max(st[d] + lv[d] - before, 0)
    lease[d] = 0
    if wall[d] > 0 then
      grant[d] = math.max(math.min(math.floor(st[d] * wme[d] / wall[d]), lv[d] - kept[d]), 0)
    end
  end
  asked = tick
elseif mode == 1 then
  for d = 1, 2 do
    local reserved = 0
    if wall[d] > 0 then reserved = math.floor(st[d] * pending[d] / wall[d]) end
    grant[d] = math.max(math.min(amount[d], lv[d] - reserved - kept[d]), 0)
  end
else
  for d = 1, 2 do
    local back = math.max(math.min(amount[d], lease[d]), 0)
    lv[d] = lv[d] + back
    gt[d] = gt[d] - back
    lease[d] = lease[d] - back
  end
end
for d = 1, 2 do
  lv[d] = lv[d] - grant[d]
  gt[d] = gt[d] + grant[d]
  lease[d] = lease[d] + grant[d]
end

local keep = math.floor((ttl + 60000000) / 1000)
redis.call('HSET', KEYS[1], 'tick', last, 'lr', lv[1], 'lw', lv[2], 'sr', st[1], 'sw', st[2], 'gr', gt[1], 'gw', gt[2],
  'pt', pt, 'psr', ps[1], 'psw', ps[2], 'pgr', pg[1], 'pgw', pg[2])
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('HSET', KEYS[2], id, string.format('%d %d %d %d %d %d %d %d %d', now + ttl, members, active[1], active[2], asked, lease[1], lease[2], hold[1], hold[2]))
redis.call('PEXPIRE', KEYS[2], keep)
return {tick, grant[1], grant[2], (tick + 1) * tickUs - now, total, procs, st[1], st[2], shareTick, share[1], share[2]}
`)
