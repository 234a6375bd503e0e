//! One logical database (`SELECT n`) of one shard: a hash table from key to [`Entry`],
//! with lazy expiry on access, an active expiry cycle, and a cursor scan that survives
//! concurrent inserts and deletes.
//!
//! The table is an insertion-ordered index map. Deletion moves the last entry into the
//! freed slot, so a scan that walks slots from the highest index down never misses an
//! entry present for the whole scan (it may see one twice, which Redis allows too).

use super::key::CompactKey;
use super::value::Value;
use foldhash::fast::RandomState;
use indexmap::{IndexMap, IndexSet};
use rand::Rng;

/// The table of one database.
pub type Table = IndexMap<CompactKey, Entry, RandomState>;

/// A key's stored entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry time in Unix milliseconds; 0 means no expiry.
    pub expire_at: u64,
    /// Last access, in seconds of the shard's LRU clock (for OBJECT IDLETIME).
    pub access: u32,
    /// Logarithmic access counter as Redis's LFU keeps it (OBJECT FREQ; the memory issue's
    /// eviction policy reads it too). Decays by one per `lfu-decay-time` idle minutes.
    pub freq: u8,
    /// Snapshot epoch (fits in the entry's padding): an entry whose epoch differs from
    /// its database's was present when the running snapshot started and is not
    /// serialized yet (see [`crate::persistence::cut`]). Any value works when building
    /// an entry: [`Db`] stamps what it inserts.
    pub snap_epoch: u8,
}

/// Redis's `LFU_INIT_VAL`: the counter of a new key.
pub const LFU_INIT_VAL: u8 = 5;
/// Redis's default `lfu-log-factor`.
pub const LFU_LOG_FACTOR: u32 = 10;
/// Redis's default `lfu-decay-time` (minutes).
pub const LFU_DECAY_MINUTES: u32 = 1;

impl Entry {
    /// The LFU counter decayed to `clock` (seconds), without counting an access
    /// (Redis's `LFUDecrAndReturn`).
    #[inline]
    pub fn freq_at(&self, clock: u32) -> u8 {
        let idle_minutes = clock.saturating_sub(self.access) / 60;
        let periods = idle_minutes / LFU_DECAY_MINUTES;
        self.freq.saturating_sub(periods.min(255) as u8)
    }
}

impl Entry {
    /// True when the entry has a TTL that has passed at `now_ms` (Redis's
    /// `keyIsExpired`: expired once the clock is past the deadline, not at it).
    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at < now_ms
    }
}

/// One database of one shard.
#[derive(Default)]
pub struct Db {
    map: IndexMap<CompactKey, Entry, RandomState>,
    volatile: IndexSet<CompactKey, RandomState>,
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
    /// The snapshot epoch stamped on inserted entries.
    epoch: u8,
    /// The running snapshot's state for this database (`None`, the common case, costs
    /// one branch on the mutating paths).
    snap: Option<Box<crate::persistence::cut::DbSnap>>,
    /// Eviction's ghost filter: fingerprints of keys evicted before their first hit
    /// (see [`Db::evict_one`]); empty, the default, when eviction is off.
    ghost: Vec<u32>,
}

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

/// Bytes of an index map with room for `cap` entries of `entry` bytes: the entry
/// vector plus hashbrown's index table (8-byte slots and a control byte each, at a
/// load factor of 7/8, rounded to a power of two).
fn table_bytes(cap: usize, entry: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let buckets = (cap * 8 / 7).next_power_of_two();
    cap * entry + buckets * 9
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

    fn expire_index(&mut self, idx: usize) {
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        if let Some((key, entry)) = self.map.swap_remove_index(idx) {
            if entry.expire_at != 0 {
                self.volatile.swap_remove(&key);
            }
            self.expired_keys += 1;
            if let Some(log) = &mut self.expired_log {
                log.push(Box::from(&*key));
            }
        }
    }

    /// Looks up a live key, deleting it first if its TTL has passed. Stamps the access time.
    #[inline]
    pub fn lookup(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let idx = self.map.get_index_of(key)?;
        if self.map[idx].is_expired(now_ms) {
            self.expire_index(idx);
            return None;
        }
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        let clock = self.lru_clock;
        let r = self.next_random();
        let entry = &mut self.map[idx];
        entry.freq = lfu_log_incr(entry.freq_at(clock), r);
        entry.access = clock;
        Some(entry)
    }

    /// Looks up a live key without stamping its access time (OBJECT IDLETIME, TYPE...).
    pub fn peek(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let idx = self.map.get_index_of(key)?;
        if self.map[idx].is_expired(now_ms) {
            self.expire_index(idx);
            return None;
        }
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        Some(&mut self.map[idx])
    }

    /// The live entry of `key`, read-only: no expiry, no access stamp (an expired entry
    /// reads as missing). Used by commands that hold several values at once after looking
    /// each key up with [`Db::lookup`].
    #[inline]
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| !e.is_expired(now_ms))
    }

    /// True when the key exists and is not expired (expired keys are deleted).
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.peek(key, now_ms).is_some()
    }

    /// Inserts or replaces a key. `expire_at` 0 = no TTL.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: u64) {
        let access = self.lru_clock;
        match self.map.get_index_of(key) {
            Some(idx) => {
                if self.snap.is_some() {
                    self.snap_save(idx);
                }
                let entry = &mut self.map[idx];
                let had_ttl = entry.expire_at != 0;
                entry.value = value;
                entry.expire_at = expire_at;
                entry.access = access;
                entry.freq = LFU_INIT_VAL;
                if had_ttl && expire_at == 0 {
                    self.volatile.swap_remove(key);
                } else if !had_ttl && expire_at != 0 {
                    self.volatile.insert(CompactKey::new(key));
                }
            }
            None => {
                if expire_at != 0 {
                    self.volatile.insert(CompactKey::new(key));
                }
                if let Some(log) = &mut self.created_log {
                    log.push(Box::from(key));
                }
                let freq = if self.ghost.is_empty() {
                    LFU_INIT_VAL
                } else {
                    self.ghost_admit(key)
                };
                self.map.insert(
                    CompactKey::new(key),
                    Entry {
                        value,
                        expire_at,
                        access,
                        freq,
                        snap_epoch: self.epoch,
                    },
                );
            }
        }
    }

    /// Replaces a key's value keeping its TTL if the key exists (and is live).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, now_ms: u64) {
        let access = self.lru_clock;
        if let Some(entry) = self.lookup(key, now_ms) {
            entry.value = value;
            entry.access = access;
        } else {
            self.set(key, value, 0);
        }
    }

    /// Inserts a whole entry (used by RENAME, MOVE, COPY and restores), replacing any old one.
    pub fn insert_entry(&mut self, key: &[u8], entry: Entry) {
        let expire_at = entry.expire_at;
        let (freq, access) = (entry.freq, entry.access);
        self.set(key, entry.value, expire_at);
        if let Some(e) = self.map.get_mut(key) {
            e.freq = freq;
            e.access = access;
        }
    }

    /// Removes a key if it is live; returns its entry. An expired key is deleted and
    /// `None` returned.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        let idx = self.map.get_index_of(key)?;
        if self.map[idx].is_expired(now_ms) {
            self.expire_index(idx);
            return None;
        }
        if self.snap.is_some() {
            self.snap_save(idx);
        }
        let (k, entry) = self.map.swap_remove_index(idx)?;
        if entry.expire_at != 0 {
            self.volatile.swap_remove(&k);
        }
        Some(entry)
    }

    /// Sets the TTL of an existing live key. Returns false when the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64, now_ms: u64) -> bool {
        let Some(entry) = self.peek(key, now_ms) else {
            return false;
        };
        let had = entry.expire_at != 0;
        entry.expire_at = expire_at;
        if !had && expire_at != 0 {
            self.volatile.insert(CompactKey::new(key));
        } else if had && expire_at == 0 {
            self.volatile.swap_remove(key);
        }
        true
    }

    /// Removes the TTL of a live key. Returns true when a TTL was removed.
    pub fn persist(&mut self, key: &[u8], now_ms: u64) -> bool {
        match self.peek(key, now_ms) {
            Some(e) if e.expire_at != 0 => {
                e.expire_at = 0;
                self.volatile.swap_remove(key);
                true
            }
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
        self.volatile = IndexSet::default();
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
            if self.map[idx].is_expired(now_ms) {
                self.expire_index(idx);
                continue;
            }
            return self.map.get_index(idx).map(|(k, _)| k.to_vec());
        }
        // Mostly expired keys: fall back to a linear walk.
        self.map
            .iter()
            .find(|(_, e)| !e.is_expired(now_ms))
            .map(|(k, _)| k.to_vec())
    }

    /// Iterates over all entries (expired ones included; callers filter with `now`).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.map.iter().map(|(k, e)| (&**k, e))
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
            let (k, e) = self.map.get_index((next - 1) as usize).expect("in range");
            if !e.is_expired(now_ms) {
                f(k, e);
            }
            next -= 1;
            visited += 1;
        }
        next
    }

    /// One round of active expiry: samples up to `samples` keys with a TTL and deletes the
    /// expired ones. Returns (sampled, expired).
    pub fn active_expire_round(&mut self, now_ms: u64, samples: usize) -> (usize, usize) {
        let mut rng = rand::thread_rng();
        let mut sampled = 0;
        let mut expired = 0;
        while sampled < samples && !self.volatile.is_empty() {
            let vidx = rng.gen_range(0..self.volatile.len());
            sampled += 1;
            let key = &self.volatile[vidx];
            let Some(idx) = self.map.get_index_of(&**key) else {
                self.volatile.swap_remove_index(vidx);
                continue;
            };
            if self.map[idx].is_expired(now_ms) {
                self.expire_index(idx);
                expired += 1;
            }
        }
        (sampled, expired)
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

    /// Bytes of the main table (entries and hash index) at its current capacity: the
    /// per-key overhead MEMORY USAGE and MEMORY STATS apportion.
    pub fn table_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(usize, CompactKey, Entry)>();
        table_bytes(self.map.capacity(), entry)
    }

    /// Bytes the main table would allocate for its next insert when it is full (its
    /// entries and index double; the old ones are freed after the move), 0 when it has
    /// room. Eviction counts this so that a full cache evicts a key rather than double
    /// its table past the budget.
    pub fn growth_bytes(&self) -> usize {
        let cap = self.map.capacity();
        if cap == 0 || self.map.len() < cap {
            return 0;
        }
        let entry = std::mem::size_of::<(usize, CompactKey, Entry)>();
        table_bytes(cap * 2, entry)
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
        if vcap >= 4096 && vlen * 8 < vcap && vlen <= MAX_LIVE {
            self.volatile.shrink_to(vlen * 2);
        }
    }

    /// Bytes of the table of keys with a TTL (MEMORY STATS `overhead.hashtable.expires`).
    pub fn expires_table_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(usize, CompactKey)>();
        table_bytes(self.volatile.capacity(), entry)
            + self.volatile.iter().map(|k| k.heap_size()).sum::<usize>()
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
                match self.map.get_index_of(&*self.volatile[r]) {
                    Some(i) => i,
                    None => continue,
                }
            } else {
                r
            };
            let (k, e) = self.map.get_index(idx).expect("sampled in range");
            if e.is_expired(now_ms) {
                self.expire_index(idx);
                return Evicted::Expired;
            }
            if protect(k) {
                continue;
            }
            let score = match policy {
                EvictPolicy::AllRandom | EvictPolicy::VolatileRandom => 0,
                EvictPolicy::VolatileTtl => e.expire_at,
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
        let (key, entry) = self.map.swap_remove_index(idx).expect("in range");
        if entry.expire_at != 0 {
            self.volatile.swap_remove(&key);
        }
        if !self.ghost.is_empty() && entry.freq <= LFU_INIT_VAL {
            let (h, tag) = ghost_hash(&key);
            let slot = h & (self.ghost.len() - 1);
            self.ghost[slot] = tag;
        }
        drop(entry);
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
        if let Some((k, e)) = self.map.get_index_mut(idx) {
            if e.snap_epoch != epoch {
                e.snap_epoch = epoch;
                s.write(k, e);
            }
        }
    }

    /// Starts a snapshot of this database (the cut): entries present now are written
    /// by [`Db::snap_step`] or by the mutating path that meets them first.
    pub fn snap_begin(&mut self, snap: Box<crate::persistence::cut::DbSnap>) {
        self.epoch = self.epoch.wrapping_add(1);
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
            if let Some((k, e)) = self.map.get_index_mut(s.cursor) {
                if e.snap_epoch != epoch {
                    e.snap_epoch = epoch;
                    s.write(k, e);
                }
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
        for (k, e) in self.map.iter_mut() {
            if e.snap_epoch != epoch {
                e.snap_epoch = epoch;
                s.write(k, e);
            }
        }
        s.cursor = 0;
    }
}
