//! One logical database (`SELECT n`) of one shard: a hash table from key to [`Entry`],
//! with lazy expiry on access, an active expiry cycle, and a cursor scan that survives
//! concurrent inserts and deletes.
//!
//! The table ([`Table`]) is a dense vector of entry blocks with a hash index; deletion
//! moves the last entry into the freed slot, so a scan that walks slots from the highest
//! index down never misses an entry present for the whole scan (it may see one twice,
//! which Redis allows too). Keys with a TTL are also listed in `volatile` (positions in
//! the table; each such entry stores its place in that list), which the active expiry
//! cycle samples.

use super::entry::{Detached, Node};
use super::key::CompactKey;
use super::value::Value;

pub use super::entry::{Entry, LFU_DECAY_MINUTES, LFU_INIT_VAL};
pub use super::table::Table;
use rand::Rng;

/// Redis's default `lfu-log-factor`.
pub const LFU_LOG_FACTOR: u32 = 10;

/// One database of one shard.
#[derive(Default)]
pub struct Db {
    map: Table,
    volatile: Vec<u32>,
    /// Keys deleted because their TTL passed (lazily or by the active cycle).
    pub expired_keys: u64,
    /// The LRU clock used to stamp accesses (seconds).
    pub lru_clock: u32,
    rng: u64,
    /// When `Some`, keys deleted by expiry are logged here (for WATCH and `expired`
    /// keyspace events); `None`, the default, costs nothing.
    pub expired_log: Option<Vec<Box<[u8]>>>,
    /// When `Some`, keys added to the table are logged here (for `new` keyspace events);
    /// `None`, the default, costs nothing.
    pub created_log: Option<Vec<Box<[u8]>>>,
    /// The snapshot epoch (0 or 1) stamped on inserted entries; flipped by each snapshot.
    epoch: u8,
    /// The running snapshot's state for this database (`None`, the common case, costs
    /// one branch on the mutating paths).
    snap: Option<Box<crate::persistence::cut::DbSnap>>,
    /// Eviction's ghost filter: fingerprints of keys evicted before their first hit
    /// (see [`Db::evict_one`]); empty, the default, when eviction is off.
    ghost: Vec<u32>,
    /// The active expiry's sequential sweep of `volatile` (see [`Db::active_expire_sweep`]).
    sweep: Sweep,
}

/// State of the active expiry's sequential sweep over the keys with a TTL: entries of
/// `volatile` at positions below `pos` are not checked yet in the current pass.
#[derive(Default, Clone, Copy)]
struct Sweep {
    /// True while a pass is under way.
    on: bool,
    /// Positions of `volatile` below this one are still to be checked in this pass.
    pos: usize,
    /// Checked and expired entries in the current window (see [`SWEEP_WINDOW`]).
    checked: usize,
    expired: usize,
}

/// The sweep stops early (keeping its place) when fewer than 1 in 10 of this many
/// consecutive checks found an expired key, like the sampling's acceptable-stale 10%.
const SWEEP_WINDOW: usize = 1024;

/// Which keys eviction may take, and how it ranks them (see docs/memory.md).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EvictPolicy {
    /// Any key; the least frequently used first, the least recently used among equals
    /// (`allkeys-lru`, `allkeys-lfu`).
    AllKeys,
    /// Any key, at random (`allkeys-random`).
    AllRandom,
    /// Keys with a TTL, ranked like [`EvictPolicy::AllKeys`] (`volatile-lru`,
    /// `volatile-lfu`).
    Volatile,
    /// Keys with a TTL, at random (`volatile-random`).
    VolatileRandom,
    /// Keys with a TTL, the nearest expiry first (`volatile-ttl`).
    VolatileTtl,
}

impl EvictPolicy {
    /// True when only keys with a TTL may be evicted.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictPolicy::Volatile | EvictPolicy::VolatileRandom | EvictPolicy::VolatileTtl
        )
    }
}

/// What one eviction step did.
#[derive(Debug)]
pub enum Evicted {
    /// Nothing could be evicted (no candidate, or every candidate was protected).
    Nothing,
    /// A sampled key had expired and was reclaimed (counted as expired, not evicted).
    Expired,
    /// This key was evicted.
    Key(CompactKey),
}

/// The ghost fingerprint of a key: (slot hash, tag). The tag is never 0 (0 = empty slot).
#[inline]
fn ghost_hash(key: &[u8]) -> (usize, u32) {
    use std::hash::BuildHasher;
    let h = foldhash::fast::FixedState::with_seed(0x6768_6f73_7421).hash_one(key);
    (h as usize, ((h >> 32) as u32) | 1)
}

/// Redis's `LFULogIncr`: increments the counter with probability 1/((c-5)*factor+1).
#[inline]
fn lfu_log_incr(counter: u8, random: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as u64;
    let p_inverse = base * LFU_LOG_FACTOR as u64 + 1;
    // random / 2^32 < 1 / p_inverse
    if (random as u64) * p_inverse < (1u64 << 32) {
        counter + 1
    } else {
        counter
    }
}

impl Db {
    /// An empty database.
    pub fn new() -> Db {
        Db::default()
    }

    /// A fast xorshift step for the LFU counter's coin flips.
    #[inline]
    fn next_random(&mut self) -> u32 {
        if self.rng == 0 {
            self.rng = 0x9e37_79b9_7f4a_7c15;
        }
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 32) as u32
    }

    /// Number of keys, including expired keys not reclaimed yet (like Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn expires_len(&self) -> usize {
        self.volatile.len()
    }

    /// Estimated average time to live, in milliseconds, of the keys with a TTL (INFO
    /// keyspace `avg_ttl`; 0 without such keys): the mean over up to 64 keys spread
    /// evenly over the list of keys with a TTL, skipping those already expired. Redis
    /// reports a running estimate from its expiry samples too.
    pub fn avg_ttl_ms(&self, now_ms: u64) -> u64 {
        const SAMPLES: usize = 64;
        let n = self.volatile.len();
        if n == 0 {
            return 0;
        }
        let step = n.div_ceil(SAMPLES);
        let (mut sum, mut count) = (0u64, 0u64);
        for &idx in self.volatile.iter().step_by(step) {
            let at = self.map.entry(idx as usize).expire_at();
            if at > now_ms {
                sum += at - now_ms;
                count += 1;
            }
        }
        sum.checked_div(count).unwrap_or(0)
    }

    /// Removes the entry at `idx` from the table and from the list of keys with a TTL.
    fn remove_at(&mut self, idx: usize) -> Node {
        if self.map.entry(idx).expire_at() != 0 {
            self.vol_remove(idx);
        }
        let last = self.map.len() - 1;
        let node = self.map.swap_remove(idx);
        if idx != last {
            // The last entry moved into `idx`.
            let moved = self.map.entry(idx);
            if moved.expire_at() != 0 {
                let vp = moved.vpos() as usize;
                self.volatile[vp] = idx as u32;
            }
        }
        node
    }

    /// Lists the entry at `idx` (which has a TTL) among the keys with a TTL.
    fn vol_add(&mut self, idx: usize) {
        let vp = self.volatile.len() as u32;
        self.map.entry_mut(idx).set_vpos(vp);
        self.volatile.push(idx as u32);
    }

    /// Unlists the entry at `idx` from the keys with a TTL.
    fn vol_remove(&mut self, idx: usize) {
        let vp = self.map.entry(idx).vpos() as usize;
        let last = self.volatile.pop().expect("listed");
        if vp < self.volatile.len() {
            self.volatile[vp] = last;
            self.map.entry_mut(last as usize).set_vpos(vp as u32);
        }
    }

    fn expire_index(&mut self, idx: usize) {
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        let node = self.remove_at(idx);
        self.expired_keys += 1;
        if let Some(log) = &mut self.expired_log {
            log.push(Box::from(node.entry().key()));
        }
    }

    /// The position of a live key: an expired one is deleted first (`None`); an entry of
    /// a running snapshot's cut is serialized before the caller may change it.
    #[inline]
    fn live_index(&mut self, key: &[u8], now_ms: u64) -> Option<usize> {
        let idx = self.map.find(key)?;
        if self.map.entry(idx).is_expired(now_ms) {
            self.expire_index(idx);
            return None;
        }
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        Some(idx)
    }

    /// Stamps an access (LRU clock, LFU counter) on the entry at `idx` and returns it.
    #[inline]
    fn touch(&mut self, idx: usize) -> &mut Entry {
        let clock = self.lru_clock;
        let r = self.next_random();
        let entry = self.map.entry_mut(idx);
        entry.freq = lfu_log_incr(entry.freq_at(clock), r);
        entry.access = clock;
        entry
    }

    /// Looks up a live key, deleting it first if its TTL has passed. Stamps the access time.
    #[inline]
    pub fn lookup(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let idx = self.live_index(key, now_ms)?;
        Some(self.touch(idx))
    }

    /// Like [`Db::lookup`], but a string stored inline is first moved into a boxed
    /// [`Value`], so that [`Entry::value_mut`] returns it (for commands that change a
    /// string in place: APPEND, SETRANGE, SETBIT, BITFIELD, PFADD...).
    pub fn lookup_boxed(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let idx = self.live_index(key, now_ms)?;
        self.map.with_node_mut(idx, |n| n.make_boxed());
        Some(self.touch(idx))
    }

    /// The entry of `key` (which the caller just looked up) with its value boxed, so that
    /// [`Entry::value_mut`] returns it; no expiry check, no access stamp.
    pub fn boxed_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let idx = self.map.find(key)?;
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        self.map.with_node_mut(idx, |n| n.make_boxed());
        Some(self.map.entry_mut(idx))
    }

    /// Looks up a live key without stamping its access time (OBJECT IDLETIME, TYPE...).
    pub fn peek(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let idx = self.live_index(key, now_ms)?;
        Some(self.map.entry_mut(idx))
    }

    /// The live entry of `key`, read-only: no expiry, no access stamp (an expired entry
    /// reads as missing). Used by commands that hold several values at once after looking
    /// each key up with [`Db::lookup`].
    #[inline]
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let idx = self.map.find(key)?;
        Some(self.map.entry(idx)).filter(|e| !e.is_expired(now_ms))
    }

    /// True when the key exists and is not expired (expired keys are deleted).
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.peek(key, now_ms).is_some()
    }

    /// Inserts or replaces a key. `expire_at` 0 = no TTL.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: u64) {
        let access = self.lru_clock;
        match self.map.find(key) {
            Some(idx) => {
                if self.snap.is_some() {
                    self.snap_save(idx);
                }
                if expire_at == 0 && self.map.entry(idx).expire_at() == 0 {
                    // A string or integer over one of the same size and no TTL on either
                    // side (a cache refreshing a value): rewrite it in place, no
                    // allocation.
                    let e = self.map.entry_mut(idx);
                    let done = match &value {
                        Value::Small { len, data } => e.set_str_in_place(&data[..*len as usize]),
                        Value::Str(b) => e.set_str_in_place(b),
                        Value::Int(v) => e.set_int_in_place(*v),
                        _ => false,
                    };
                    if done {
                        e.access = access;
                        e.freq = LFU_INIT_VAL;
                        e.set_snap_epoch(self.epoch);
                        return;
                    }
                }
                if self.map.entry(idx).expire_at() != 0 {
                    self.vol_remove(idx);
                }
                let mut node = Node::new(key, value, expire_at, access, LFU_INIT_VAL);
                node.entry_mut().set_snap_epoch(self.epoch);
                drop(self.map.replace(idx, node));
                if expire_at != 0 {
                    self.vol_add(idx);
                }
            }
            None => {
                if let Some(log) = &mut self.created_log {
                    log.push(Box::from(key));
                }
                let freq = if self.ghost.is_empty() {
                    LFU_INIT_VAL
                } else {
                    self.ghost_admit(key)
                };
                let mut node = Node::new(key, value, expire_at, access, freq);
                node.entry_mut().set_snap_epoch(self.epoch);
                let idx = self.map.push(node);
                if expire_at != 0 {
                    self.vol_add(idx);
                }
            }
        }
    }

    /// Replaces a key's value keeping its TTL if the key exists (and is live).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, now_ms: u64) {
        let expire_at = match self.lookup(key, now_ms) {
            Some(e) => e.expire_at(),
            None => 0,
        };
        let access = self.lru_clock;
        self.set(key, value, expire_at);
        if let Some(idx) = self.map.find(key) {
            self.map.entry_mut(idx).access = access;
        }
    }

    /// Replaces the value of a live key that the caller just looked up, keeping its TTL,
    /// access time and LFU counter (INCR on a non-inline integer, INCRBYFLOAT).
    pub fn replace_value(&mut self, key: &[u8], value: Value) {
        let Some(idx) = self.map.find(key) else {
            return self.set(key, value, 0);
        };
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        let e = self.map.entry(idx);
        let (expire_at, access, freq) = (e.expire_at(), e.access, e.freq);
        let vpos = if expire_at != 0 { e.vpos() } else { 0 };
        let mut node = Node::new(key, value, expire_at, access, freq);
        {
            let n = node.entry_mut();
            n.set_snap_epoch(self.epoch);
            if expire_at != 0 {
                n.set_vpos(vpos);
            }
        }
        drop(self.map.replace(idx, node));
    }

    /// Inserts a whole entry (used by RENAME, MOVE, COPY and restores), replacing any old one.
    pub fn insert_entry(&mut self, key: &[u8], entry: Detached) {
        let (freq, access) = (entry.freq, entry.access);
        self.set(key, entry.value, entry.expire_at);
        if let Some(idx) = self.map.find(key) {
            let e = self.map.entry_mut(idx);
            e.freq = freq;
            e.access = access;
        }
    }

    /// Removes a key if it is live; returns its entry. An expired key is deleted and
    /// `None` returned.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Detached> {
        let idx = self.live_index(key, now_ms)?;
        Some(self.remove_at(idx).into_detached())
    }

    /// Sets the TTL of an existing live key. Returns false when the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64, now_ms: u64) -> bool {
        if self.peek(key, now_ms).is_none() {
            return false;
        }
        let idx = self.map.find(key).expect("live");
        let had = self.map.entry(idx).expire_at() != 0;
        if had && expire_at == 0 {
            self.vol_remove(idx);
        }
        self.map.with_node_mut(idx, |n| n.set_expire(expire_at));
        if !had && expire_at != 0 {
            self.vol_add(idx);
        }
        true
    }

    /// Removes the TTL of a live key. Returns true when a TTL was removed.
    pub fn persist(&mut self, key: &[u8], now_ms: u64) -> bool {
        match self.peek(key, now_ms) {
            Some(e) if e.expire_at() != 0 => self.set_expire(key, 0, now_ms),
            _ => false,
        }
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        let old = std::mem::take(&mut self.map);
        if let Some(s) = self.snap.as_deref_mut() {
            // The snapshot walker serializes what is left of the old table.
            s.detach(old);
        }
        self.volatile = Vec::new();
        self.sweep = Sweep::default();
    }

    /// A random live key, or `None` when the database is empty. Expired keys met on the
    /// way are deleted.
    pub fn random_key(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            if self.map.is_empty() {
                return None;
            }
            let idx = rng.gen_range(0..self.map.len());
            if self.map.entry(idx).is_expired(now_ms) {
                self.expire_index(idx);
                continue;
            }
            return Some(self.map.entry(idx).key().to_vec());
        }
        // Mostly expired keys: fall back to a linear walk.
        self.map
            .iter()
            .find(|e| !e.is_expired(now_ms))
            .map(|e| e.key().to_vec())
    }

    /// Iterates over all entries (expired ones included; callers filter with `now`).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.map.iter().map(|e| (e.key(), e))
    }

    /// One step of a cursor scan. `pos` 0 starts a scan; the returned position is 0 when
    /// the scan is complete. Visits about `count` slots, calling `f` for live entries.
    pub fn scan(
        &self,
        pos: u64,
        count: usize,
        now_ms: u64,
        mut f: impl FnMut(&[u8], &Entry),
    ) -> u64 {
        let len = self.map.len() as u64;
        // Next slot to visit is `next - 1`; visiting goes downwards.
        let mut next = if pos == 0 || pos > len { len } else { pos };
        let mut visited = 0;
        while next > 0 && visited < count.max(1) {
            let e = self.map.entry((next - 1) as usize);
            if !e.is_expired(now_ms) {
                f(e.key(), e);
            }
            next -= 1;
            visited += 1;
        }
        next
    }

    /// One round of active expiry: samples up to `samples` keys with a TTL and deletes the
    /// expired ones. Returns (sampled, expired).
    pub fn active_expire_round(&mut self, now_ms: u64, samples: usize) -> (usize, usize) {
        let mut sampled = 0;
        let mut expired = 0;
        while sampled < samples && !self.volatile.is_empty() {
            let r = ((self.next_random() as u64 * self.volatile.len() as u64) >> 32) as usize;
            sampled += 1;
            let idx = self.volatile[r] as usize;
            if self.map.entry(idx).is_expired(now_ms) {
                self.expire_index(idx);
                expired += 1;
            }
        }
        (sampled, expired)
    }

    /// True while the active expiry sweeps the keys with a TTL sequentially (see
    /// [`Db::active_expire_sweep`]).
    pub fn expire_sweeping(&self) -> bool {
        self.sweep.on
    }

    /// Starts a sequential sweep of the keys with a TTL, from where the previous pass
    /// stopped early, or from the end of the list when it completed. Called by the
    /// active expiry when random samples show that many keys are expired: checking
    /// every entry in list order then reclaims far more keys per unit of work than
    /// sampling at random (no random number, no retry on live keys, the list read in
    /// order, and deleting the last entry of the list moves nothing).
    pub fn start_expire_sweep(&mut self) {
        let len = self.volatile.len();
        if self.sweep.pos == 0 || self.sweep.pos > len {
            self.sweep.pos = len;
        }
        self.sweep.on = self.sweep.pos > 0;
        self.sweep.checked = 0;
        self.sweep.expired = 0;
    }

    /// Checks up to `max` keys with a TTL in list order, from the sweep's position
    /// downwards, deleting the expired ones. Returns (checked, expired). The pass ends
    /// at the start of the list, or early when a window of [`SWEEP_WINDOW`] checks
    /// found fewer than 10% expired (random sampling then takes over again).
    ///
    /// No entry present for the whole pass is skipped: a deletion (here or by a
    /// command) moves the last entry of the list into the freed place, and the last
    /// entry is either already checked (at or above the position) or, when the list
    /// shrank below the position, unchecked and moved to a lower, unchecked place.
    /// Entries added during the pass go to the end and wait for the next one.
    pub fn active_expire_sweep(&mut self, now_ms: u64, max: usize) -> (usize, usize) {
        let mut checked = 0;
        let mut expired = 0;
        while self.sweep.on && checked < max {
            let pos = self.sweep.pos.min(self.volatile.len());
            if pos == 0 {
                self.sweep = Sweep::default();
                break;
            }
            let vp = pos - 1;
            let idx = self.volatile[vp] as usize;
            checked += 1;
            if self.map.entry(idx).is_expired(now_ms) {
                self.expire_index(idx);
                expired += 1;
                self.sweep.expired += 1;
            }
            self.sweep.pos = vp;
            self.sweep.checked += 1;
            if self.sweep.checked == SWEEP_WINDOW {
                if self.sweep.expired * 10 < SWEEP_WINDOW {
                    self.sweep.on = false;
                }
                self.sweep.checked = 0;
                self.sweep.expired = 0;
            }
        }
        (checked, expired)
    }

    /// Sizes the ghost filter of eviction for about `keys` keys (0 turns it off and frees
    /// it). The filter is rebuilt empty when its size changes by more than a factor of 2.
    pub fn size_ghost(&mut self, keys: usize) {
        if keys == 0 {
            self.ghost = Vec::new();
            return;
        }
        let want = keys.next_power_of_two().max(1024);
        let have = self.ghost.len();
        if have == 0 || want > have * 2 || want * 2 < have {
            self.ghost = vec![0; want];
        }
    }

    /// Starts loading what looking up `keys` will read (a pipeline's next keys; see
    /// [`Table::prefetch`]). A hint only.
    #[inline]
    pub fn prefetch(&self, keys: &[&[u8]]) {
        self.map.prefetch(keys);
    }

    /// Bytes of the main table (entries and hash index) at its current capacity: the
    /// per-key overhead MEMORY USAGE and MEMORY STATS apportion.
    pub fn table_bytes(&self) -> usize {
        self.map.bytes()
    }

    /// Bytes the main table would allocate for its next insert when it is full (its
    /// entries and index double; the old ones are freed after the move), 0 when it has
    /// room. Eviction counts this so that a full cache evicts a key rather than double
    /// its table past the budget.
    pub fn growth_bytes(&self) -> usize {
        self.map.growth_bytes()
    }

    /// Gives back most of a table's room when it is less than 1/8 full (after mass
    /// expiry or deletes, or a shrinking `CONFIG SET maxmemory`), as Redis's cron
    /// resizes its dicts below 10% fill. The live keys are rehashed at once, so only
    /// tables with at most 128k live keys are shrunk (a few milliseconds at most).
    /// Called from the cron only.
    pub fn shrink_if_sparse(&mut self) {
        const MAX_LIVE: usize = 1 << 17;
        let (len, cap) = (self.map.len(), self.map.capacity());
        if cap >= 4096 && len * 8 < cap && len <= MAX_LIVE {
            self.map.shrink_to(len * 2);
        }
        let (vlen, vcap) = (self.volatile.len(), self.volatile.capacity());
        if vcap >= 4096 && vlen * 8 < vcap {
            self.volatile.shrink_to(vlen * 2);
        }
    }

    /// Bytes of the table of keys with a TTL (MEMORY STATS `overhead.hashtable.expires`).
    pub fn expires_table_bytes(&self) -> usize {
        // The list of positions, plus the expiry area of each such entry's block.
        self.volatile.capacity() * std::mem::size_of::<u32>() + self.volatile.len() * 16
    }

    /// Bytes held by the ghost filter.
    pub fn ghost_bytes(&self) -> usize {
        self.ghost.capacity() * std::mem::size_of::<u32>()
    }

    /// The LFU counter a new key starts with: one above [`LFU_INIT_VAL`] (as if it had
    /// been read once) when the ghost filter remembers it was evicted before its first
    /// hit not long ago, [`LFU_INIT_VAL`] otherwise.
    #[inline]
    fn ghost_admit(&mut self, key: &[u8]) -> u8 {
        let (h, tag) = ghost_hash(key);
        let slot = h & (self.ghost.len() - 1);
        if self.ghost[slot] == tag {
            self.ghost[slot] = 0;
            LFU_INIT_VAL + 1
        } else {
            LFU_INIT_VAL
        }
    }

    /// One eviction step: samples up to `samples` candidates (every key, or the keys
    /// with a TTL, as `policy` says), skipping those `protect` names, and removes the
    /// worst one. An expired candidate met on the way is reclaimed instead. A key evicted
    /// while still on its first life (never read since it was written) is remembered in
    /// the ghost filter, so that if it is written again soon it starts as if read once.
    pub fn evict_one(
        &mut self,
        now_ms: u64,
        policy: EvictPolicy,
        samples: usize,
        protect: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Evicted {
        let volatile = policy.volatile_only();
        let pool = if volatile {
            self.volatile.len()
        } else {
            self.map.len()
        };
        if pool == 0 {
            return Evicted::Nothing;
        }
        let clock = self.lru_clock;
        let mut best: Option<(usize, u64)> = None;
        for _ in 0..samples.max(1) {
            let r = ((self.next_random() as u64 * pool as u64) >> 32) as usize;
            let idx = if volatile {
                self.volatile[r] as usize
            } else {
                r
            };
            let e = self.map.entry(idx);
            if e.is_expired(now_ms) {
                self.expire_index(idx);
                return Evicted::Expired;
            }
            if protect(e.key()) {
                continue;
            }
            let score = match policy {
                EvictPolicy::AllRandom | EvictPolicy::VolatileRandom => 0,
                EvictPolicy::VolatileTtl => e.expire_at(),
                EvictPolicy::AllKeys | EvictPolicy::Volatile => {
                    ((e.freq_at(clock) as u64) << 32) | e.access as u64
                }
            };
            if best.is_none_or(|(_, s)| score < s) {
                best = Some((idx, score));
            }
            if score == 0 {
                break;
            }
        }
        let Some((idx, _)) = best else {
            return Evicted::Nothing;
        };
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        let node = self.remove_at(idx);
        let entry = node.entry();
        let key = CompactKey::new(entry.key());
        if !self.ghost.is_empty() && entry.freq <= LFU_INIT_VAL {
            let (h, tag) = ghost_hash(entry.key());
            let slot = h & (self.ghost.len() - 1);
            self.ghost[slot] = tag;
        }
        drop(node);
        Evicted::Key(key)
    }

    /// Takes every entry out of the database (SWAPDB, FLUSHALL ASYNC).
    pub fn take(&mut self) -> Db {
        if self.snap.is_some() {
            // The caller gets the entries: serialize those of the cut first.
            self.snap_finish_now();
        }
        let mut fresh = Db {
            lru_clock: self.lru_clock,
            epoch: self.epoch,
            snap: self.snap.take(),
            expired_log: self.expired_log.as_ref().map(|_| Vec::new()),
            created_log: self.created_log.as_ref().map(|_| Vec::new()),
            ..Db::default()
        };
        std::mem::swap(self, &mut fresh);
        // The ghost filter stays with the database slot.
        std::mem::swap(&mut self.ghost, &mut fresh.ghost);
        fresh
    }

    /// Snapshot hook of every mutating path: serializes entry `idx` into the running
    /// snapshot if it belongs to the cut and is not written yet.
    #[cold]
    #[inline(never)]
    fn snap_save(&mut self, idx: usize) {
        let epoch = self.epoch;
        let Some(s) = self.snap.as_deref_mut() else {
            return;
        };
        let e = self.map.entry_mut(idx);
        if e.snap_epoch() != epoch {
            e.set_snap_epoch(epoch);
            s.write(e);
        }
    }

    /// Starts a snapshot of this database (the cut): entries present now are written
    /// by [`Db::snap_step`] or by the mutating path that meets them first.
    pub fn snap_begin(&mut self, snap: Box<crate::persistence::cut::DbSnap>) {
        self.epoch ^= 1;
        let mut snap = snap;
        snap.cursor = self.map.len();
        self.snap = Some(snap);
    }

    /// True while a snapshot of this database runs.
    pub fn snap_active(&self) -> bool {
        self.snap.is_some()
    }

    /// One step of the snapshot walker: visits up to `budget` entries (from the highest
    /// slot down, so swap-removals never hide one), then the detached tables. Returns
    /// the bytes serialized since the last call with their database number and key
    /// count, and true once the walk is complete (the snapshot state is then dropped).
    pub fn snap_step(&mut self, budget: usize) -> Option<(usize, Vec<u8>, u64, bool)> {
        let epoch = self.epoch;
        let s = self.snap.as_deref_mut()?;
        let mut visited = 0;
        s.cursor = s.cursor.min(self.map.len());
        while visited < budget && s.cursor > 0 {
            s.cursor -= 1;
            visited += 1;
            let e = self.map.entry_mut(s.cursor);
            if e.snap_epoch() != epoch {
                e.set_snap_epoch(epoch);
                s.write(e);
            }
        }
        while visited < budget {
            if !s.step_detached(epoch, budget - visited, &mut visited) {
                break;
            }
        }
        let done = s.cursor == 0 && s.detached_empty();
        let out = s.take_out();
        let keys = std::mem::take(&mut s.keys);
        let index = s.index;
        if done {
            self.snap = None;
        }
        Some((index, out, keys, done))
    }

    /// Serializes every entry of the cut not written yet, at once (before the table is
    /// handed away by [`Db::take`]).
    fn snap_finish_now(&mut self) {
        let epoch = self.epoch;
        let Some(s) = self.snap.as_deref_mut() else {
            return;
        };
        for e in self.map.iter_mut() {
            if e.snap_epoch() != epoch {
                e.set_snap_epoch(epoch);
                s.write(e);
            }
        }
        s.cursor = 0;
    }
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn a_sweep_reclaims_every_expired_key_despite_deletes_and_inserts() {
        let mut db = Db::default();
        let now = 1_000_000;
        // Expired and live keys interleaved, plus keys without a TTL.
        for i in 0..10_000u32 {
            let at = if i % 3 == 0 { now + 60_000 } else { now - 1 };
            db.set(format!("k{i}").as_bytes(), Value::from_bytes(b"v"), at);
            db.set(format!("p{i}").as_bytes(), Value::from_bytes(b"v"), 0);
        }
        db.start_expire_sweep();
        let mut i = 0u32;
        while db.expire_sweeping() {
            db.active_expire_sweep(now, 100);
            // Commands delete keys and add keys with a TTL in the middle of the pass.
            db.remove(format!("k{}", i * 7 % 10_000).as_bytes(), now);
            db.set(format!("n{i}").as_bytes(), Value::from_bytes(b"v"), now + 1);
            i += 1;
        }
        for j in 0..10_000u32 {
            let k = format!("k{j}");
            let e = db
                .map
                .find(k.as_bytes())
                .map(|idx| db.map.entry(idx).expire_at());
            assert!(e.is_none() || e == Some(now + 60_000), "{k} left expired");
        }
        // Each expired key was reclaimed once (by the sweep, or by the lazy check of a
        // DEL that met it first).
        assert_eq!(db.expired_keys, 6666);
        assert!(i > 10, "the pass ran in {i} steps");
    }
}
