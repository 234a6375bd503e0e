//! Memory accounting and the `maxmemory` budget (see docs/memory.md).
//!
//! **The process figure** (`used_memory`) is jemalloc's `stats.allocated`, read through its
//! control interface after advancing `epoch` (which is what refreshes the statistics).
//! A refresh costs a few microseconds and takes jemalloc's statistics locks, so it is
//! not done per command: a shard refreshes at every tick of its cron (`--hz`), when its
//! own allocations moved by more than a step (1/64 of its budget, at least 64 KiB) since
//! the last refresh, and before it refuses a write. The last figure is shared by every
//! shard through atomics.
//!
//! **A shard's own figure.** jemalloc also keeps, per thread, the bytes that thread ever
//! allocated and freed (`thread.allocatedp` / `thread.deallocatedp`: two pointer reads).
//! Between refreshes, a shard adds its own net allocation since the last refresh to the
//! last figure it saw, so a large pipeline or a big value is seen at once. Memory freed
//! on another thread (a reply built by the owner shard and sent by the home shard) skews
//! these counters, which is why they only bridge the gap between two refreshes and are
//! never summed over time.
//!
//! **A shard's share.** With `--maxmemory M` and `N` shards each shard has a budget of
//! `M / N`. Its usage is the process figure apportioned by its share of the keys (the
//! key counts are published by every shard at each refresh), plus its own net
//! allocation since. The shares sum to the process figure, so when every shard is within
//! its budget, the process is within `M`.

use super::{ShardData, MAX_SHARDS};
use crate::storage::{EvictPolicy, Evicted};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The error of a write refused for memory (Redis 7.0's text).
pub const OOM_ERROR: &[u8] = b"OOM command not allowed when used memory > 'maxmemory'.";

/// How many keys one eviction step samples. Redis samples 5 (`maxmemory-samples`) into
/// a pool of 16; sampling 16 fresh candidates per eviction measured as good as the pool
/// without having to keep copies of keys (docs/memory.md).
pub const EVICTION_SAMPLES: usize = 16;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static ACTIVE: AtomicU64 = AtomicU64::new(0);
static RESIDENT: AtomicU64 = AtomicU64::new(0);
static METADATA: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static STARTUP: AtomicU64 = AtomicU64::new(0);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static SHARD_KEYS: [AtomicU64; MAX_SHARDS] = [const { AtomicU64::new(0) }; MAX_SHARDS];

/// jemalloc's process-wide statistics at one refresh.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocStats {
    /// Bytes allocated by the application (`stats.allocated`): `used_memory`.
    pub allocated: u64,
    /// Bytes in active pages (`stats.active`).
    pub active: u64,
    /// Bytes in physically resident pages mapped by the allocator (`stats.resident`).
    pub resident: u64,
    /// Bytes of allocator metadata (`stats.metadata`).
    pub metadata: u64,
}

/// Advances jemalloc's `epoch` and reads its statistics; publishes them for every shard
/// (and updates the peak). Zeros when jemalloc's statistics are not available (a build
/// whose global allocator is not jemalloc).
pub fn refresh() -> AllocStats {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let st = AllocStats {
        allocated: stats::allocated::read().unwrap_or(0) as u64,
        active: stats::active::read().unwrap_or(0) as u64,
        resident: stats::resident::read().unwrap_or(0) as u64,
        metadata: stats::metadata::read().unwrap_or(0) as u64,
    };
    ALLOCATED.store(st.allocated, Relaxed);
    ACTIVE.store(st.active, Relaxed);
    RESIDENT.store(st.resident, Relaxed);
    METADATA.store(st.metadata, Relaxed);
    PEAK.fetch_max(st.allocated, Relaxed);
    GENERATION.fetch_add(1, Relaxed);
    st
}

/// The statistics of the last refresh.
pub fn last() -> AllocStats {
    AllocStats {
        allocated: ALLOCATED.load(Relaxed),
        active: ACTIVE.load(Relaxed),
        resident: RESIDENT.load(Relaxed),
        metadata: METADATA.load(Relaxed),
    }
}

/// The highest `used_memory` seen by a refresh (`used_memory_peak`).
pub fn peak() -> u64 {
    PEAK.load(Relaxed)
}

/// `used_memory` at the first refresh, when the shards had started and held no data
/// (`used_memory_startup`).
pub fn startup() -> u64 {
    STARTUP.load(Relaxed)
}

/// Resets the peak to the current figure (`MEMORY STATS` has no reset; `CONFIG
/// RESETSTAT` does this in Redis).
pub fn reset_peak() {
    PEAK.store(ALLOCATED.load(Relaxed), Relaxed);
}

/// The process's resident set size in bytes (`/proc/self/statm`).
pub fn rss() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// Returns unused dirty pages of every arena to the system (`MEMORY PURGE`).
pub fn purge() -> bool {
    // "arena.<MALLCTL_ARENAS_ALL>.purge" takes neither an old nor a new value.
    let name = b"arena.4096.purge\0";
    // SAFETY: a valid NUL-terminated name; no value pointers.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    rc == 0
}

/// jemalloc's statistics report (`MEMORY MALLOC-STATS`).
pub fn malloc_stats() -> String {
    let mut out = Vec::new();
    let opts = tikv_jemalloc_ctl::stats_print::Options::default();
    if tikv_jemalloc_ctl::stats_print::stats_print(&mut out, opts).is_err() {
        return "Stats not supported for the current allocator".into();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Total keys of every shard as last published.
fn total_keys(nshards: usize) -> u64 {
    SHARD_KEYS[..nshards.min(MAX_SHARDS)]
        .iter()
        .map(|k| k.load(Relaxed))
        .sum()
}

/// One shard's view of memory: the budget and the per-thread counters.
pub struct ShardMemory {
    counters: Option<(
        tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
        tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
    )>,
    /// `maxmemory` in bytes; 0 = no limit (then nothing here costs more than a branch).
    pub limit: u64,
    /// This shard's budget: `limit / shards`.
    pub budget: u64,
    /// The eviction policy, `None` in store mode (writes over the limit get -OOM).
    pub policy: Option<EvictPolicy>,
    step: i64,
    gen: u64,
    base_net: u64,
    base_global: u64,
    base_share: u64,
}

impl Default for ShardMemory {
    fn default() -> Self {
        ShardMemory {
            counters: None,
            limit: 0,
            budget: 0,
            policy: None,
            step: 64 * 1024,
            gen: u64::MAX,
            base_net: 0,
            base_global: 0,
            base_share: 0,
        }
    }
}

impl ShardMemory {
    /// The accounting of the calling thread (call it on the shard's own thread).
    pub fn for_this_thread() -> ShardMemory {
        let a = tikv_jemalloc_ctl::thread::allocatedp::read();
        let d = tikv_jemalloc_ctl::thread::deallocatedp::read();
        ShardMemory {
            counters: a.ok().zip(d.ok()),
            ..ShardMemory::default()
        }
    }

    /// Applies `maxmemory`, the policy and the shard count.
    pub fn configure(&mut self, limit: u64, policy: Option<EvictPolicy>, nshards: usize) {
        self.limit = limit;
        self.budget = limit / nshards.max(1) as u64;
        self.policy = policy;
        self.step = (self.budget / 64).max(64 * 1024) as i64;
        self.gen = u64::MAX;
    }

    /// Net bytes this thread allocated (wrapping).
    #[inline]
    fn net(&self) -> u64 {
        match self.counters {
            Some((a, d)) => a.get().wrapping_sub(d.get()),
            None => 0,
        }
    }

    /// Takes the last published process figure as the new base.
    fn sync(&mut self, id: usize, nshards: usize, keys: u64) {
        self.gen = GENERATION.load(Relaxed);
        self.base_global = ALLOCATED.load(Relaxed);
        self.base_net = self.net();
        SHARD_KEYS[id].store(keys, Relaxed);
        let total = total_keys(nshards);
        self.base_share = if total == 0 || nshards <= 1 {
            self.base_global / nshards.max(1) as u64
        } else {
            (self.base_global as u128 * keys as u128 / total as u128) as u64
        };
    }

    /// This thread's net allocation since the base was taken.
    #[inline]
    fn delta(&self) -> i64 {
        self.net().wrapping_sub(self.base_net) as i64
    }

    /// Brings the base up to date when another shard refreshed, or refreshes when this
    /// shard moved by more than a step.
    #[inline]
    fn update(&mut self, id: usize, nshards: usize, keys: &dyn Fn() -> u64) {
        if self.delta().abs() > self.step {
            refresh();
            self.sync(id, nshards, keys());
        } else if GENERATION.load(Relaxed) != self.gen {
            self.sync(id, nshards, keys());
        }
    }
}

impl ShardData {
    /// Keys in every database of this shard.
    pub fn key_count(&self) -> u64 {
        self.dbs.iter().map(|d| d.len() as u64).sum()
    }

    /// Refreshes jemalloc's figures and this shard's base (the cron, every tick).
    pub fn refresh_memory(&mut self) {
        refresh();
        let keys = self.key_count();
        self.mem.sync(self.id, self.nshards, keys);
    }

    fn update_memory(&mut self) {
        let (id, n) = (self.id, self.nshards);
        let dbs = &self.dbs;
        self.mem
            .update(id, n, &|| dbs.iter().map(|d| d.len() as u64).sum());
    }

    /// The process's memory as this shard estimates it now.
    pub fn used_memory_estimate(&mut self) -> u64 {
        self.update_memory();
        (self.mem.base_global as i64 + self.mem.delta()).max(0) as u64
    }

    /// This shard's share of the process's memory, as it estimates it now.
    pub fn shard_used_estimate(&mut self) -> u64 {
        self.update_memory();
        (self.mem.base_share as i64 + self.mem.delta()).max(0) as u64
    }

    /// Store mode: true when a command that may grow memory must be refused (the
    /// process is over `maxmemory`). Costs one branch without a limit. In cache mode
    /// the shard owning the keys makes room instead (see [`ShardData::make_room`]), so
    /// this answers false.
    #[inline]
    pub fn oom(&mut self) -> bool {
        if self.mem.limit == 0 || self.mem.policy.is_some() {
            return false;
        }
        self.oom_slow()
    }

    #[cold]
    fn oom_slow(&mut self) -> bool {
        if self.used_memory_estimate() <= self.mem.limit {
            return false;
        }
        // About to refuse: make sure with a fresh figure (deletes on other shards may
        // have freed memory since the last refresh).
        self.refresh_memory();
        self.used_memory_estimate() > self.mem.limit
    }

    /// Before a command that may grow memory runs on this shard: in cache mode, evicts
    /// keys until this shard's usage plus `incoming` bytes fits its budget. Keys for
    /// which `protect(db, key)` is true (the command's own keys, a transaction's keys)
    /// and keys locked by a running transaction or script are never evicted. Returns
    /// false when the command must be refused with [`OOM_ERROR`]: nothing could be
    /// evicted and the shard is still over its budget. Costs one branch without a limit.
    /// The command writes in database `db`: when that database's table is full, the
    /// table's growth counts too (a full cache evicts rather than doubles its table).
    #[inline]
    pub fn make_room(
        &mut self,
        db: usize,
        incoming: usize,
        protect: &dyn Fn(usize, &[u8]) -> bool,
    ) -> bool {
        if self.mem.limit == 0 || self.mem.policy.is_none() {
            return true;
        }
        self.make_room_slow(Some(db), incoming as u64, protect, None)
    }

    /// The eviction loop behind [`ShardData::make_room`]; stops at `deadline` if given.
    /// Returns false when the shard is still over its budget.
    #[cold]
    pub fn make_room_slow(
        &mut self,
        target: Option<usize>,
        incoming: u64,
        protect: &dyn Fn(usize, &[u8]) -> bool,
        deadline: Option<Instant>,
    ) -> bool {
        let Some(policy) = self.mem.policy else {
            return true;
        };
        let budget = self.mem.budget;
        if incoming as i64 > self.mem.step / 4 {
            // A big value: its bytes were received on the connection's home shard, and
            // the copy the handler makes here will be matched by a free of that buffer
            // on this thread, which hides it from the per-thread counters. Take a fresh
            // figure (this costs little next to copying the value).
            self.refresh_memory();
        }
        let growth = |s: &ShardData| target.map_or(0, |d| s.dbs[d].growth_bytes() as u64);
        // A write also makes room while the whole process would pass the limit: shares
        // are apportioned by key counts, so a shard holding large values is charged
        // less than it holds and another shard more, and that other shard (which may
        // not be written to) only evicts on its cron tick. The writing shard knows the
        // process figure (fresh for a big value) plus its own allocations since.
        let limit = self.mem.limit;
        // (After shard_used_estimate, which brought the base up to date.)
        let total_over = |s: &ShardData, add: u64| {
            target.is_some()
                && (s.mem.base_global as i64 + s.mem.delta()).max(0) as u64 + add > limit
        };
        let grow = growth(self);
        if self.shard_used_estimate() + incoming + grow <= budget
            && !total_over(self, incoming + grow)
        {
            return true;
        }
        let now = super::now_ms();
        let mut steps = 0u32;
        let mut db_cursor = 0usize;
        let ndbs = self.dbs.len();
        loop {
            let used = self.shard_used_estimate() + incoming;
            let grow = growth(self);
            let over_share = used + grow > budget;
            if !over_share && !total_over(self, incoming + grow) {
                return true;
            }
            // Over only because the target's table is full: one eviction there makes
            // room in the table (if nothing there can go, let the table grow).
            let only = if used <= budget && grow > 0 {
                target
            } else {
                None
            };
            // One step in the next database that has candidates, round robin.
            let mut done = false;
            for i in 0..ndbs {
                let db = match only {
                    Some(d) if i == 0 => d,
                    Some(_) => break,
                    None => (db_cursor + i) % ndbs,
                };
                let locks = &self.locks;
                let mut guard =
                    |k: &[u8]| protect(db, k) || (!locks.is_empty() && locks.is_locked(db, k));
                match self.dbs[db].evict_one(now, policy, EVICTION_SAMPLES, &mut guard) {
                    Evicted::Nothing => continue,
                    Evicted::Expired => {}
                    Evicted::Key(key) => {
                        self.stats.evicted_keys += 1;
                        self.modified(db, &key, b'e', "evicted");
                    }
                }
                db_cursor = db + 1;
                done = true;
                break;
            }
            if !done {
                if only.is_some() || !over_share {
                    // Over only for the table's growth, or only because the process
                    // is over: the other shards' part to fix (on their cron tick).
                    return true;
                }
                // Nothing left to evict and over this shard's share, which is an
                // apportioned estimate: refuse only if a fresh figure confirms it and
                // the whole process would pass the limit too.
                self.refresh_memory();
                let used = self.shard_used_estimate() + incoming + growth(self);
                return used <= budget || self.used_memory_estimate() + incoming <= limit;
            }
            steps += 1;
            if steps.is_multiple_of(64) {
                if self.mem.counters.is_none() {
                    // No per-thread counters: only a refresh shows what was freed.
                    self.refresh_memory();
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return false;
                }
            }
        }
    }

    /// The cron's part (every `--hz` tick): refreshes the figures, sizes eviction's
    /// ghost filters, in cache mode evicts down to the budget for at most `budget` of
    /// time (a shrinking `CONFIG SET maxmemory` continues over the next ticks), and
    /// shrinks tables left mostly empty.
    pub fn memory_cron(&mut self, budget: Duration) {
        self.refresh_memory();
        if self.id == 0 {
            // The first tick: every shard has started and no client has written yet.
            let _ = STARTUP.compare_exchange(0, ALLOCATED.load(Relaxed), Relaxed, Relaxed);
        }
        let ghost = self.mem.limit != 0 && self.mem.policy.is_some();
        for db in &mut self.dbs {
            db.size_ghost(if ghost { db.len() } else { 0 });
        }
        if ghost {
            let deadline = Instant::now() + budget;
            self.make_room_slow(None, 0, &|_, _| false, Some(deadline));
        }
        for db in &mut self.dbs {
            db.shrink_if_sparse();
        }
    }

    /// Applies `maxmemory`, `maxmemory-policy` and `cache_mode` from the configuration.
    pub fn apply_memory_config(&mut self) {
        let policy = eviction_policy(&self.config.maxmemory_policy, self.config.cache_mode);
        self.mem
            .configure(self.config.maxmemory, policy, self.nshards);
        if self.mem.limit != 0 && self.mem.policy.is_some() {
            // A lower limit takes effect at once (the cron finishes a long eviction).
            let deadline = Instant::now() + Duration::from_millis(100);
            self.make_room_slow(None, 0, &|_, _| false, Some(deadline));
        }
    }

    /// Bytes held by eviction's ghost filters.
    pub fn ghost_bytes(&self) -> usize {
        self.dbs.iter().map(|d| d.ghost_bytes()).sum()
    }
}

/// The eviction behaviour for a `maxmemory-policy` value and `cache_mode`
/// (docs/memory.md): `noeviction` is store mode (`None`) unless `cache_mode` is on, in
/// which case every key may be evicted; `cache_mode` on with no explicit policy reports
/// `allkeys-lru`.
pub fn eviction_policy(policy: &str, cache_mode: bool) -> Option<EvictPolicy> {
    match policy.to_ascii_lowercase().as_str() {
        "allkeys-lru" | "allkeys-lfu" => Some(EvictPolicy::AllKeys),
        "allkeys-random" => Some(EvictPolicy::AllRandom),
        "volatile-lru" | "volatile-lfu" => Some(EvictPolicy::Volatile),
        "volatile-random" => Some(EvictPolicy::VolatileRandom),
        "volatile-ttl" => Some(EvictPolicy::VolatileTtl),
        _ if cache_mode => Some(EvictPolicy::AllKeys),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_mapping() {
        assert_eq!(eviction_policy("noeviction", false), None);
        assert_eq!(
            eviction_policy("noeviction", true),
            Some(EvictPolicy::AllKeys)
        );
        assert_eq!(
            eviction_policy("allkeys-lfu", false),
            Some(EvictPolicy::AllKeys)
        );
        assert_eq!(
            eviction_policy("volatile-ttl", true),
            Some(EvictPolicy::VolatileTtl)
        );
    }
}
