//! Shards: one glommio executor per CPU, each owning a slice of the keyspace.
//!
//! [`ShardData`] is everything a shard owns (its databases, lock table, statistics, a
//! copy of the configuration). It lives in an `Rc<RefCell<_>>` on its executor thread and
//! is never touched by another thread. Other shards reach it only by sending a
//! [`Job`] (a closure) over glommio's channel mesh; [`Shards::run_on`] wraps that into an
//! `async` call that returns the closure's result through a oneshot channel.
//!
//! Keys map to shards by a fixed hash of the key, or of its hash tag (`{user42}:a` hashes
//! `user42`), so related keys can live on one shard. See [`key_shard`].

pub mod blocking;
pub mod clock;
pub mod latency;
pub mod locks;
pub mod memory;
pub mod runtime;
pub mod watch;

use crate::commands::Registry;
use crate::config::Config;
use crate::storage::Db;
use glommio::channels::channel_mesh::Senders;
use locks::{KeyLocks, LockKey};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A unit of work sent to another shard.
pub type Job = Box<dyn FnOnce(&mut ShardData) + Send>;

/// Most shards supported (the SCAN cursor reserves 10 bits for the shard).
pub const MAX_SHARDS: usize = 1024;

/// The command registry, built once and shared read-only by every shard.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(Registry::new)
}

/// Current Unix time in milliseconds.
#[inline]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The part of a key that decides its shard: the hash tag if there is a non-empty one
/// (`{...}`), else the whole key (Redis Cluster's rule).
#[inline]
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&c| c == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&c| c == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The shard owning `key` among `nshards`.
#[inline]
pub fn key_shard(key: &[u8], nshards: usize) -> usize {
    if nshards <= 1 {
        return 0;
    }
    let h = foldhash::fast::FixedState::with_seed(0x6c69_6265_6c6c_756c).hash_one(hash_tag(key));
    // Use the high bits: they are the best mixed.
    ((h >> 32) % nshards as u64) as usize
}

/// Counters of one command (INFO commandstats).
#[derive(Clone, Copy, Default, Debug)]
pub struct CmdStat {
    /// Calls.
    pub calls: u64,
    /// Calls rejected before running (arity, auth...).
    pub rejected: u64,
    /// Calls that replied with an error.
    pub failed: u64,
}

/// Shard-local statistics, summed over shards by INFO.
#[derive(Clone, Default, Debug)]
pub struct ShardStats {
    /// Successful key lookups by read commands.
    pub keyspace_hits: u64,
    /// Failed key lookups by read commands.
    pub keyspace_misses: u64,
    /// Commands processed.
    pub total_commands: u64,
    /// Connections accepted.
    pub total_connections: u64,
    /// Connections refused (maxclients).
    pub rejected_connections: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
    /// Error replies by prefix (ERR, WRONGTYPE...).
    pub errors: BTreeMap<String, u64>,
    /// Per-command counters, indexed like the registry list.
    pub cmds: Vec<CmdStat>,
    /// Clients currently connected to this shard.
    pub connected_clients: u64,
    /// Failed AUTH / HELLO AUTH attempts.
    pub auth_failures: u64,
    /// Clients closed for passing their `client-output-buffer-limit`.
    pub output_limit_disconnections: u64,
    /// Clients closed by client eviction (`maxmemory-clients`).
    pub evicted_clients: u64,
    /// Clients of this shard blocked in BLPOP and the like (a gauge).
    pub blocked_clients: u64,
    /// Per-command latency histograms, indexed like the registry list (created on a
    /// command's first timed call; see [`latency`]).
    pub latency: Vec<Option<Box<latency::Histogram>>>,
    /// Keys evicted to stay within maxmemory (cache mode).
    pub evicted_keys: u64,
}

impl ShardStats {
    /// Records that command `idx` ran for `ns` nanoseconds on this shard.
    #[inline]
    pub fn record_latency(&mut self, idx: usize, ns: u64) {
        match self.latency.get_mut(idx) {
            Some(Some(h)) => h.record(ns),
            _ => self.record_first_latency(idx, ns),
        }
    }

    /// [`ShardStats::record_latency`] for a command not timed on this shard yet.
    #[cold]
    fn record_first_latency(&mut self, idx: usize, ns: u64) {
        if self.latency.len() <= idx {
            self.latency.resize_with(idx + 1, || None);
        }
        self.latency[idx]
            .get_or_insert_with(Default::default)
            .record(ns);
    }
}

/// Everything one shard owns.
pub struct ShardData {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub nshards: usize,
    /// The databases (`--dbnum` of them).
    pub dbs: Vec<Db>,
    /// This shard's copy of the configuration (CONFIG SET updates every copy).
    pub config: Config,
    /// Statistics.
    pub stats: ShardStats,
    /// Locks held by cross-shard commands.
    pub locks: KeyLocks,
    /// Process start.
    pub started: Instant,
    /// Clients homed on this shard: id -> their CLIENT LIST line fields.
    pub clients: BTreeMap<u64, crate::server::client::ClientInfo>,
    /// Set when a shutdown was requested.
    pub shutdown: Rc<std::cell::Cell<bool>>,
    /// Set when some client of this shard was asked to close (CLIENT KILL).
    pub kill_pending: bool,
    /// Wakes this shard's network loop.
    pub loop_waker: Option<Rc<crate::server::conn::Completions>>,
    /// Bytes to append to the output of local clients (MONITOR feed): (client id, bytes).
    pub pushes: Vec<(u64, Vec<u8>)>,
    /// Keys watched by transactions (WATCH) on this shard.
    pub watches: watch::WatchTable,
    /// The parsed `notify-keyspace-events` setting (0 = off, the default).
    pub notify_mask: u32,
    /// Keyspace events raised by the current command, published after it.
    pub events: Vec<watch::KeyEvent>,
    /// Pub/sub subscriptions of this shard's clients.
    pub pubsub: crate::server::pubsub::Registry,
    /// Clients blocked on this shard's keys (BLPOP...).
    pub blocking: blocking::Blocking,
    /// `latency-tracking yes`: commands are timed into [`ShardStats::latency`].
    pub latency_tracking: bool,
    /// Bumped by every [`ShardData::apply_config`]: the network loop re-reads the
    /// limits it caches (bulk length, query buffer, output buffers) when it changes.
    pub config_gen: u64,
    /// `client-output-buffer-limit` parsed: `[hard, soft, soft_seconds]` for the
    /// normal, replica and pubsub classes (0 = no limit).
    pub output_limits: [[u64; 3]; 3],
    /// Changes since the last successful snapshot (Redis's `server.dirty`, per shard).
    pub dirty: u64,
    /// `dirty` when the running snapshot's cut was taken.
    pub dirty_at_save: u64,
    /// Memory accounting and the maxmemory budget of this shard.
    pub mem: memory::ShardMemory,
}

/// Parses the canonical `client-output-buffer-limit` value (`normal 0 0 0 slave ...
/// pubsub ...`, as the configuration stores it) into `[hard, soft, seconds]` per class:
/// index 0 normal, 1 replica, 2 pubsub.
pub fn parse_output_limits(s: &str) -> [[u64; 3]; 3] {
    let mut out = [[0u64; 3]; 3];
    let words: Vec<&str> = s.split_whitespace().collect();
    for g in words.chunks(4) {
        if g.len() != 4 {
            break;
        }
        let class = match g[0] {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => continue,
        };
        for i in 0..3 {
            out[class][i] = g[i + 1].parse().unwrap_or(0);
        }
    }
    out
}

impl ShardData {
    /// A fresh shard.
    pub fn new(id: usize, nshards: usize, config: Config) -> ShardData {
        let dbs = (0..config.dbnum).map(|_| Db::new()).collect();
        let ncmds = registry().stat_slots();
        ShardData {
            id,
            nshards,
            dbs,
            config,
            stats: ShardStats {
                cmds: vec![CmdStat::default(); ncmds],
                ..Default::default()
            },
            locks: KeyLocks::default(),
            started: Instant::now(),
            clients: BTreeMap::new(),
            shutdown: Rc::new(std::cell::Cell::new(false)),
            kill_pending: false,
            loop_waker: None,
            pushes: Vec::new(),
            watches: watch::WatchTable::default(),
            notify_mask: 0,
            events: Vec::new(),
            pubsub: Default::default(),
            blocking: blocking::Blocking::default(),
            latency_tracking: true,
            config_gen: 0,
            output_limits: [[0; 3]; 3],
            dirty: 0,
            dirty_at_save: 0,
            mem: memory::ShardMemory::for_this_thread(),
        }
        .with_config_applied()
    }

    fn with_config_applied(mut self) -> ShardData {
        self.apply_config();
        self
    }

    /// A size-like configuration parameter (`hash-max-listpack-entries`,
    /// `set-max-intset-entries`...) as this shard's configuration has it now (CONFIG SET
    /// changes it); `default` when it is unset or unreadable.
    pub fn config_usize(&self, name: &str, default: usize) -> usize {
        let parsed = match self.config.extra.get(name) {
            Some(v) => v.parse::<u64>().ok(),
            None => self
                .config
                .get_one(name)
                .and_then(|v| v.parse::<u64>().ok()),
        };
        parsed.map_or(default, |v| usize::try_from(v).unwrap_or(usize::MAX))
    }

    /// Recomputes what this shard derives from its configuration (after start-up and
    /// every CONFIG SET).
    pub fn apply_config(&mut self) {
        let notify = self
            .config
            .extra
            .get("notify-keyspace-events")
            .map(|s| s.as_bytes())
            .unwrap_or(b"");
        self.notify_mask = watch::notify::parse(notify).unwrap_or(0);
        self.latency_tracking = self
            .config
            .extra
            .get("latency-tracking")
            .is_none_or(|v| v == "yes");
        self.sync_expiry_tracking();
        self.output_limits = parse_output_limits(
            self.config
                .extra
                .get("client-output-buffer-limit")
                .map_or("", |s| s.as_str()),
        );
        self.config_gen += 1;
        if self.id == 0 {
            crate::persistence::note_config(&self.config);
        }
        self.apply_memory_config();
    }

    /// Turns the databases' expired-key logs on when something needs them (a WATCH on
    /// this shard, or `expired` keyspace events), off otherwise.
    pub fn sync_expiry_tracking(&mut self) {
        let want = !self.watches.is_empty()
            || (self.notify_mask & watch::notify::class_bit(b'x') != 0
                && self.notify_mask & (watch::notify::KEYSPACE | watch::notify::KEYEVENT) != 0);
        let sinks = watch::notify::KEYSPACE | watch::notify::KEYEVENT;
        let want_new =
            self.notify_mask & watch::notify::class_bit(b'n') != 0 && self.notify_mask & sinks != 0;
        for db in &mut self.dbs {
            if want && db.expired_log.is_none() {
                db.expired_log = Some(Vec::new());
            } else if !want {
                db.expired_log = None;
            }
            if want_new && db.created_log.is_none() {
                db.created_log = Some(Vec::new());
            } else if !want_new {
                db.created_log = None;
            }
        }
    }

    /// Raises the `new` keyspace events of keys added since the last call (Redis raises
    /// them when a key is added, before the event of the command that added it).
    pub fn drain_created(&mut self) {
        for i in 0..self.dbs.len() {
            let Some(log) = self.dbs[i].created_log.as_mut() else {
                continue;
            };
            if log.is_empty() {
                continue;
            }
            for k in std::mem::take(log) {
                self.push_key_event(i, &k, b'n', "new");
            }
        }
    }

    /// Before FLUSHDB (`Some(db)`) or FLUSHALL (`None`) empties databases: dirties the
    /// WATCHes of keys that exist.
    pub fn touch_flushed(&mut self, db: Option<usize>) {
        if self.watches.is_empty() {
            return;
        }
        let now = now_ms();
        let dbs = &mut self.dbs;
        self.watches.touch_db(db, |d, k| dbs[d].exists(k, now));
    }

    /// Before SWAPDB `a` `b`: dirties the WATCHes of keys of either database that exist
    /// in either of them.
    pub fn touch_swapped(&mut self, a: usize, b: usize) {
        if self.watches.is_empty() {
            return;
        }
        let now = now_ms();
        let dbs = &mut self.dbs;
        self.watches.touch_db(None, |d, k| {
            (d == a || d == b) && (dbs[a].exists(k, now) || dbs[b].exists(k, now))
        });
    }

    /// Hands keys deleted by expiry to WATCH (they count as modified) and to the
    /// `expired` keyspace event.
    pub fn drain_expired(&mut self) {
        for i in 0..self.dbs.len() {
            let Some(log) = self.dbs[i].expired_log.as_mut() else {
                continue;
            };
            if log.is_empty() {
                continue;
            }
            let keys = std::mem::take(log);
            for k in keys {
                self.watches.touch(i, &k);
                self.key_event(i, &k, b'x', "expired");
            }
        }
    }

    /// A write changed `key` of `db`: Redis's `signalModifiedKey` (WATCH) followed by
    /// `notifyKeyspaceEvent(class, event)`. Costs two branches when nothing watches
    /// and notifications are off.
    #[inline]
    pub fn modified(&mut self, db: usize, key: &[u8], class: u8, event: &'static str) {
        self.dirty += 1;
        if !self.watches.is_empty() {
            self.watches.touch(db, key);
        }
        // A sorted set written may satisfy a BZPOP* waiter (lists and streams signal on
        // their own pushes).
        if class == b'z' {
            self.signal_key_ready(db, key);
        }
        self.key_event(db, key, class, event);
    }

    /// Redis's `notifyKeyspaceEvent`: queues the event when its class is enabled.
    #[inline]
    pub fn key_event(&mut self, db: usize, key: &[u8], class: u8, event: &'static str) {
        if self.notify_mask != 0 {
            self.queue_key_event(db, key, class, event);
        }
    }

    #[cold]
    fn queue_key_event(&mut self, db: usize, key: &[u8], class: u8, event: &'static str) {
        if class != b'n' {
            self.drain_created();
        }
        self.push_key_event(db, key, class, event);
    }

    fn push_key_event(&mut self, db: usize, key: &[u8], class: u8, event: &'static str) {
        let bit = watch::notify::class_bit(class);
        let sinks = watch::notify::KEYSPACE | watch::notify::KEYEVENT;
        if self.notify_mask & bit != 0 && self.notify_mask & sinks != 0 {
            self.events.push(watch::KeyEvent {
                db,
                class,
                event,
                key: key.into(),
            });
        }
    }

    /// Asks the network loop to look at its clients again (after CLIENT KILL).
    pub fn wake_loop(&mut self) {
        self.kill_pending = true;
        if let Some(w) = &self.loop_waker {
            w.notify();
        }
    }

    /// Asks the loop to close clients idle for longer than `--timeout` seconds (0 = never).
    /// Monitors are exempt, as in Redis.
    pub fn close_idle_clients(&mut self) {
        let timeout = self.config.timeout;
        if timeout == 0 {
            return;
        }
        let now = now_ms();
        let mut any = false;
        for c in self.clients.values() {
            let mut c = c.borrow_mut();
            if !c.monitor && now.saturating_sub(c.last_active_ms) > timeout * 1000 {
                c.close_requested = true;
                any = true;
            }
        }
        if any {
            self.wake_loop();
        }
    }

    /// Queues `bytes` for the output of local client `client_id` and wakes the loop.
    pub fn push_to_client(&mut self, client_id: u64, bytes: Vec<u8>) {
        self.pushes.push((client_id, bytes));
        if let Some(w) = &self.loop_waker {
            w.notify();
        }
    }

    /// CONFIG RESETSTAT: zeroes the statistics (not the gauges).
    pub fn reset_stats(&mut self) {
        let connected = self.stats.connected_clients;
        let blocked = self.stats.blocked_clients;
        let ncmds = self.stats.cmds.len();
        self.stats = ShardStats {
            cmds: vec![CmdStat::default(); ncmds],
            connected_clients: connected,
            blocked_clients: blocked,
            ..Default::default()
        };
        for db in &mut self.dbs {
            db.expired_keys = 0;
        }
    }

    /// The start of a timed command: `Some(now)`, in [`clock`] ticks, when
    /// `latency-tracking` is on.
    #[inline]
    pub fn latency_clock(&self) -> Option<u64> {
        self.latency_tracking.then(clock::now)
    }

    /// Runs `f` (command `idx` on this shard) and records how long it took.
    #[inline]
    pub fn timed<R>(&mut self, idx: usize, f: impl FnOnce(&mut ShardData) -> R) -> R {
        let started = self.latency_clock();
        let r = f(self);
        self.record_since(idx, started);
        r
    }

    /// Ends a command timed by [`ShardData::latency_clock`].
    #[inline]
    pub fn record_since(&mut self, idx: usize, start: Option<u64>) {
        self.record_until_now(idx, start);
    }

    /// Ends a command timed by [`ShardData::latency_clock`] and returns the clock
    /// reading that ended it (`None` when `start` is): the start of the next command
    /// when commands run back to back, so each boundary costs one clock read.
    #[inline]
    pub fn record_until_now(&mut self, idx: usize, start: Option<u64>) -> Option<u64> {
        let t = start?;
        let end = clock::now();
        self.stats.record_latency(idx, clock::ns_between(t, end));
        Some(end)
    }

    /// Advances every database's LRU clock (called by the shard's timer).
    pub fn tick_clock(&mut self) {
        let secs = self.started.elapsed().as_secs() as u32;
        for db in &mut self.dbs {
            db.lru_clock = secs;
        }
    }

    /// Seconds of the LRU clock.
    pub fn lru_clock(&self) -> u32 {
        self.started.elapsed().as_secs() as u32
    }

    /// One active-expiry cycle over every database, bounded by `budget`.
    /// Returns the number of keys reclaimed.
    pub fn active_expire_cycle(&mut self, budget: std::time::Duration) -> usize {
        self.active_expire_cycle_timed(budget).0
    }

    /// [`ShardData::active_expire_cycle`], also telling whether it stopped on its time
    /// budget with expired keys left (a backlog: the cron then runs short cycles until
    /// it is gone, like Redis's fast expire cycle).
    pub fn active_expire_cycle_timed(&mut self, budget: std::time::Duration) -> (usize, bool) {
        let start = Instant::now();
        let now = now_ms();
        let mut total = 0;
        let mut backlog = false;
        for db in &mut self.dbs {
            loop {
                if db.expire_sweeping() {
                    // A backlog: check keys in list order (see Db::active_expire_sweep),
                    // looking at the clock every 64 checks.
                    total += db.active_expire_sweep(now, 64).1;
                    if !db.expire_sweeping() {
                        continue;
                    }
                    if start.elapsed() > budget {
                        backlog = true;
                        break;
                    }
                    continue;
                }
                let (sampled, expired) = db.active_expire_round(now, 20);
                total += expired;
                // Keep going while more than 10% of the sample was expired (Redis's
                // `active-expire-effort` 1: acceptable stale keys 10%).
                if sampled == 0 || expired * 10 <= sampled {
                    break;
                }
                // More than a quarter expired: sweep the list instead of sampling it.
                if expired * 4 > sampled {
                    db.start_expire_sweep();
                }
                if start.elapsed() > budget {
                    backlog = true;
                    break;
                }
            }
            if start.elapsed() > budget {
                break;
            }
        }
        (total, backlog)
    }

    /// Counts a call of command `idx` (a stat index) that answered `reply`: a failed
    /// one, and its error kind, when the reply is an error.
    #[inline]
    pub fn count_call(&mut self, idx: usize, reply: &[u8]) {
        self.stats.cmds[idx].calls += 1;
        if reply.first() == Some(&b'-') {
            self.stats.cmds[idx].failed += 1;
            let end = reply
                .iter()
                .position(|&c| c == b'\r')
                .unwrap_or(reply.len());
            self.count_error(&reply[1..end]);
        }
    }

    /// Counts an error reply by its prefix (the first word).
    pub fn count_error(&mut self, msg: &[u8]) {
        let end = msg.iter().position(|&c| c == b' ').unwrap_or(msg.len());
        let prefix = String::from_utf8_lossy(&msg[..end]);
        // Allocate the key only the first time an error kind is seen.
        match self.stats.errors.get_mut(prefix.as_ref()) {
            Some(n) => *n += 1,
            None => {
                self.stats.errors.insert(prefix.into_owned(), 1);
            }
        }
    }
}

thread_local! {
    static LOCAL_SHARDS: RefCell<Option<Rc<Shards>>> = const { RefCell::new(None) };
}

/// Records this thread's shard set (called once by each shard at start).
pub fn set_local_shards(shards: Rc<Shards>) {
    LOCAL_SHARDS.with(|l| *l.borrow_mut() = Some(shards));
}

/// The shard set of the shard running on this thread.
pub fn local_shards() -> Rc<Shards> {
    LOCAL_SHARDS.with(|l| l.borrow().clone().expect("called on a shard thread"))
}

/// A shard's handle on the whole shard set: its own data and senders to every peer.
pub struct Shards {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub n: usize,
    /// This shard's data.
    pub data: Rc<RefCell<ShardData>>,
    senders: Option<Rc<Senders<Job>>>,
}

impl Shards {
    /// Wraps this shard's data and mesh senders.
    pub fn new(
        id: usize,
        n: usize,
        data: Rc<RefCell<ShardData>>,
        senders: Option<Senders<Job>>,
    ) -> Shards {
        Shards {
            id,
            n,
            data,
            senders: senders.map(Rc::new),
        }
    }

    /// The shard owning `key`.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> usize {
        key_shard(key, self.n)
    }

    /// Runs `f` on shard `shard` and returns its result. Runs inline for the local shard.
    pub async fn run_on<R, F>(&self, shard: usize, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(&mut ShardData) -> R + Send + 'static,
    {
        if shard == self.id {
            let mut data = self.data.borrow_mut();
            let r = f(&mut data);
            blocking::serve_if_ready(&mut data);
            return r;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        let job: Job = Box::new(move |d: &mut ShardData| {
            let _ = tx.send(f(d));
        });
        let senders = self.senders.as_ref().expect("mesh joined");
        if senders.send_to(shard, job).await.is_err() {
            panic!("shard {shard} is gone");
        }
        rx.await.expect("shard dropped a reply")
    }

    /// Sends `job` to `shard` without waiting for it to run (dropped if the shard's queue
    /// is full). Runs inline for the local shard.
    pub fn post(&self, shard: usize, data: &mut ShardData, job: Job) {
        if shard == self.id {
            job(data);
        } else if let Some(s) = &self.senders {
            let _ = s.try_send_to(shard, job);
        }
    }

    /// Sends `job` to another shard without waiting for it: a detached task delivers it
    /// (at once unless the channel is full, then as soon as there is room), so the job
    /// is never dropped. Jobs sent this way from one task arrive in order.
    pub fn send_later(&self, shard: usize, job: Job) {
        let senders = self.senders.as_ref().expect("mesh joined").clone();
        glommio::spawn_local(async move {
            let _ = senders.send_to(shard, job).await;
        })
        .detach();
    }

    /// Runs `f` on every shard concurrently; results in shard order.
    pub async fn run_on_all<R, F>(&self, f: F) -> Vec<R>
    where
        R: Send + 'static,
        F: Fn(&mut ShardData) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let futs: Vec<_> = (0..self.n)
            .map(|i| {
                let f = f.clone();
                self.run_on(i, move |d| f(d))
            })
            .collect();
        futures_join_all(futs).await
    }

    /// Runs `f` on each listed shard concurrently with its own argument; results in the
    /// order given.
    pub async fn run_on_each<A, R, F>(&self, work: Vec<(usize, A)>, f: F) -> Vec<R>
    where
        A: Send + 'static,
        R: Send + 'static,
        F: Fn(&mut ShardData, A) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let futs: Vec<_> = work
            .into_iter()
            .map(|(shard, arg)| {
                let f = f.clone();
                self.run_on(shard, move |d| f(d, arg))
            })
            .collect();
        futures_join_all(futs).await
    }

    /// Locks `keys` (grouped by shard) on every shard involved, in ascending shard order,
    /// waiting for conflicting holders. Pair with [`Shards::unlock`].
    pub async fn lock(&self, groups: &BTreeMap<usize, Vec<LockKey>>) {
        for (&shard, keys) in groups {
            let keys = keys.clone();
            let waiter = self.run_on(shard, move |d| d.locks.acquire(keys)).await;
            if let Some(rx) = waiter {
                let _ = rx.await;
            }
        }
    }

    /// Releases locks taken by [`Shards::lock`]. Does not wait for remote shards to
    /// process the release: the messages are queued (and delivered in order on each
    /// shard's channel), so the caller's reply leaves one round trip earlier.
    pub async fn unlock(&self, groups: &BTreeMap<usize, Vec<LockKey>>) {
        for (&shard, keys) in groups {
            let keys = keys.clone();
            if shard == self.id {
                self.data.borrow_mut().locks.release(&keys);
                continue;
            }
            let job: Job = Box::new(move |d: &mut ShardData| d.locks.release(&keys));
            let senders = self.senders.as_ref().expect("mesh joined").clone();
            // A detached task delivers it (it runs at once unless the channel is full),
            // so a release is never lost.
            glommio::spawn_local(async move {
                let _ = senders.send_to(shard, job).await;
            })
            .detach();
        }
    }

    /// Groups `(db, key)` pairs by owning shard, for [`Shards::lock`].
    pub fn group_keys<'a>(
        &self,
        db: usize,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> BTreeMap<usize, Vec<LockKey>> {
        let mut groups: BTreeMap<usize, Vec<LockKey>> = BTreeMap::new();
        for k in keys {
            let list = groups.entry(self.owner(k)).or_default();
            let lk = (db, k.to_vec());
            if !list.contains(&lk) {
                list.push(lk);
            }
        }
        groups
    }
}

/// Awaits all futures, returning their outputs in order (a small local join_all).
pub async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..futs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("all ready")).collect()
}
