//! Clients blocked on keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP; written so that
//! BZPOPMIN/BZPOPMAX/BZMPOP and XREAD BLOCK can use it too).
//!
//! The model is Redis's (`blocked.c`):
//! - A blocking command first tries to take its data like the non-blocking command would.
//!   When there is nothing, it registers a *waiter* on every shard owning one of its keys
//!   (waiters are keyed by `(db, key)` on the key's owner shard, kept in FIFO order per
//!   key) and awaits a value, its timeout, or its client's disconnection.
//! - A write that may satisfy a waiter (a push, a RENAME or COPY onto the key...) calls
//!   [`ShardData::signal_key_ready`], which only queues the key when someone waits on it.
//!   Ready keys are served *after* the command or batch that made them ready
//!   ([`serve_ready`], called by the connection loop after each local batch, by the mesh
//!   receiver after each job, and after each local [`Shards::run_on`]), waiter by waiter in
//!   the order they blocked, each one taking its value on the owner shard and receiving it
//!   through a channel.
//!
//! Hand-off is race-free: each blocked command has one `claimed` flag (an atomic shared by
//! all its waiters on all shards). A shard serving a waiter claims the flag before taking
//! anything; a timeout or a disconnection claims it before giving up. Whoever claims first
//! wins: a server that loses takes nothing and drops the waiter; a timeout that loses waits
//! for the value already on its way (and replies with it), a disconnection that loses puts
//! the value back ([`BlockOp::restore`]). If a channel send ever fails, the value is put
//! back as well. So an element is never lost, and a command waiting on keys of several
//! shards is served at most once.
//!
//! A client running EXEC (or a script) never blocks: [`block_on`] answers as on timeout.

use super::{ShardData, Shards};
use crate::server::client::ClientState;
use futures_channel::{mpsc, oneshot};
use futures_lite::StreamExt;
use hashbrown::{HashMap, HashSet};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Identifies one blocked command (unique across shards).
pub type WaiterId = u64;

/// A `(db, key)` pair.
type DbKey = (usize, Box<[u8]>);

/// What serving a waiter did.
pub enum Serve {
    /// The key has nothing for this waiter (missing, empty, another type): it keeps
    /// waiting and so do the waiters behind it on this key.
    NotReady,
    /// The waiter is finished (served, or already claimed elsewhere): it is removed.
    Done,
}

/// A waiter's serving function: called on the owner shard with the ready key.
pub type ServeFn = Box<dyn FnMut(&mut ShardData, usize, &[u8]) -> Serve>;

struct Waiter {
    keys: Vec<DbKey>,
    claimed: Arc<AtomicBool>,
    serve: Option<ServeFn>,
}

/// A shard's table of blocked clients.
#[derive(Default)]
pub struct Blocking {
    keys: HashMap<DbKey, VecDeque<WaiterId>>,
    waiters: HashMap<WaiterId, Waiter>,
    ready: Vec<DbKey>,
    ready_set: HashSet<DbKey>,
    /// Clients of this (home) shard blocked now: their disconnection signal.
    gone: HashMap<u64, oneshot::Sender<()>>,
}

impl Blocking {
    /// True when some waiter waits on `key` of `db`.
    #[inline]
    pub fn is_waited(&self, db: usize, key: &[u8]) -> bool {
        !self.keys.is_empty() && self.keys.contains_key(&(db, Box::<[u8]>::from(key)))
    }

    /// True when ready keys wait to be served.
    #[inline]
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Number of waiters registered on this shard.
    pub fn waiters(&self) -> usize {
        self.waiters.len()
    }

    /// Queues `key` of `db` for serving if someone waits on it (Redis's
    /// `signalKeyAsReady`).
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        let k: DbKey = (db, key.into());
        if self.keys.contains_key(&k) && self.ready_set.insert(k.clone()) {
            self.ready.push(k);
        }
    }

    /// Queues every waited key of `db` (`None` = every db) for serving (after SWAPDB and
    /// the like).
    pub fn signal_db(&mut self, db: Option<usize>) {
        let keys: Vec<DbKey> = self
            .keys
            .keys()
            .filter(|(d, _)| db.is_none_or(|x| x == *d))
            .cloned()
            .collect();
        for (d, k) in keys {
            self.signal(d, &k);
        }
    }

    /// Registers waiter `id` on `keys` of this shard.
    pub fn register(
        &mut self,
        id: WaiterId,
        db: usize,
        keys: &[Vec<u8>],
        claimed: Arc<AtomicBool>,
        serve: ServeFn,
    ) {
        let mut dbkeys: Vec<DbKey> = Vec::with_capacity(keys.len());
        for k in keys {
            let dk: DbKey = (db, k[..].into());
            if dbkeys.contains(&dk) {
                continue;
            }
            self.keys.entry(dk.clone()).or_default().push_back(id);
            dbkeys.push(dk);
        }
        self.waiters.insert(
            id,
            Waiter {
                keys: dbkeys,
                claimed,
                serve: Some(serve),
            },
        );
    }

    /// Removes waiter `id` from this shard (no-op when absent).
    pub fn cancel(&mut self, id: WaiterId) {
        let Some(w) = self.waiters.remove(&id) else {
            return;
        };
        for k in w.keys {
            if let Some(q) = self.keys.get_mut(&k) {
                q.retain(|&x| x != id);
                if q.is_empty() {
                    self.keys.remove(&k);
                }
            }
        }
    }

    /// The connection of home client `client_id` closed: wakes its blocked command.
    pub fn client_gone(&mut self, client_id: u64) {
        if let Some(tx) = self.gone.remove(&client_id) {
            let _ = tx.send(());
        }
    }
}

impl ShardData {
    /// A write made `key` of `db` a candidate for blocked clients (a push, a list moved
    /// onto it...): it is served after the current command or batch. One branch when
    /// nobody blocks on this shard.
    #[inline]
    pub fn signal_key_ready(&mut self, db: usize, key: &[u8]) {
        if !self.blocking.keys.is_empty() {
            self.blocking.signal(db, key);
        }
    }
}

/// Serves the waiters of every ready key of `d`, in FIFO order per key, until no key is
/// ready (serving may make more keys ready: a BLMOVE pushing to a waited key).
pub fn serve_ready(d: &mut ShardData) {
    while !d.blocking.ready.is_empty() {
        let ready = std::mem::take(&mut d.blocking.ready);
        d.blocking.ready_set.clear();
        for (db, key) in ready {
            loop {
                let k = (db, key.clone());
                let Some(&id) = d.blocking.keys.get(&k).and_then(|q| q.front()) else {
                    break;
                };
                let Some(w) = d.blocking.waiters.get_mut(&id) else {
                    // Stale entry (cannot happen: cancel keeps both in step).
                    if let Some(q) = d.blocking.keys.get_mut(&k) {
                        q.pop_front();
                    }
                    continue;
                };
                if w.claimed.load(Ordering::Acquire) {
                    d.blocking.cancel(id);
                    continue;
                }
                let Some(mut f) = w.serve.take() else {
                    d.blocking.cancel(id);
                    continue;
                };
                match f(d, db, &key) {
                    Serve::Done => d.blocking.cancel(id),
                    Serve::NotReady => {
                        if let Some(w) = d.blocking.waiters.get_mut(&id) {
                            w.serve = Some(f);
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// Serves ready keys if there are any (the cheap check callers make after each batch).
#[inline]
pub fn serve_if_ready(d: &mut ShardData) {
    if d.blocking.has_ready() {
        serve_ready(d);
    }
}

/// A blocking operation: how to take a value from a key, and how to put it back.
pub trait BlockOp: Send + Sync + 'static {
    /// What a successful take yields (sent to the blocked command).
    type Out: Send + 'static;

    /// True when `key` of `db` has what a waiter needs (serving then claims the waiter
    /// and calls [`BlockOp::take`], which must then succeed).
    fn ready(&self, d: &mut ShardData, db: usize, key: &[u8]) -> bool;

    /// Tries to take from `key` of `db` on its owner shard. `first` is the command's own
    /// attempt: then a key of the wrong type is an outcome (a WRONGTYPE error); when
    /// serving a waiter (`first == false`) it is not ready. `None` = nothing to take.
    fn take(&self, d: &mut ShardData, db: usize, key: &[u8], first: bool) -> Option<Self::Out>;

    /// Puts back what [`BlockOp::take`] took from `key` when it cannot be delivered.
    fn restore(&self, d: &mut ShardData, db: usize, key: &[u8], out: Self::Out);
}

/// How a blocking wait ended.
pub enum Outcome<T> {
    /// Got a value from `key` (the key, the value).
    Got(Vec<u8>, T),
    /// Timed out, or the client may not block (EXEC): nothing taken.
    Timeout,
    /// The client disconnected: nothing taken (or it was put back).
    Gone,
}

/// Next waiter id (unique across shards).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What ended the wait.
enum Woken<T> {
    Value(Option<(Vec<u8>, T)>),
    Timeout,
    Gone,
}

/// Runs a blocking command for `client`: tries `keys` of `db` in order under their key
/// locks; when none has data, waits (up to `timeout_ms`, 0 = forever) for the first key
/// served. Must run as a task on the client's home shard.
pub async fn block_on<O: BlockOp>(
    shards: &Rc<Shards>,
    client: &ClientState,
    db: usize,
    keys: Vec<Vec<u8>>,
    timeout_ms: u64,
    op: Arc<O>,
) -> Outcome<O::Out> {
    let groups = shards.group_keys(db, keys.iter().map(|k| &k[..]));
    // Inside EXEC the transaction already holds every key.
    let take_locks = !client.in_exec;
    if take_locks {
        shards.lock(&groups).await;
    }
    for key in &keys {
        let (op2, k) = (op.clone(), key.clone());
        let got = shards
            .run_on(shards.owner(key), move |d| op2.take(d, db, &k, true))
            .await;
        if let Some(v) = got {
            if take_locks {
                shards.unlock(&groups).await;
            }
            return Outcome::Got(key.clone(), v);
        }
    }
    if client.in_exec {
        if take_locks {
            shards.unlock(&groups).await;
        }
        return Outcome::Timeout;
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let claimed = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded::<(Vec<u8>, O::Out)>();
    let mut by_shard: std::collections::BTreeMap<usize, Vec<Vec<u8>>> = Default::default();
    for k in &keys {
        by_shard.entry(shards.owner(k)).or_default().push(k.clone());
    }
    let involved: Vec<usize> = by_shard.keys().copied().collect();
    for (shard, ks) in by_shard {
        let (op2, tx2, cl) = (op.clone(), tx.clone(), claimed.clone());
        shards
            .run_on(shard, move |d| {
                let claimed = cl.clone();
                let serve: ServeFn = Box::new(move |d, db, key| {
                    if cl.load(Ordering::Acquire) {
                        return Serve::Done;
                    }
                    if !op2.ready(d, db, key) {
                        return Serve::NotReady;
                    }
                    if cl
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        return Serve::Done;
                    }
                    let Some(v) = op2.take(d, db, key, false) else {
                        // `ready` promised a value; nothing was taken, so nothing is lost
                        // (the blocked command answers as on timeout).
                        return Serve::Done;
                    };
                    if let Err(e) = tx2.unbounded_send((key.to_vec(), v)) {
                        let (_, v) = e.into_inner();
                        op2.restore(d, db, key, v);
                    }
                    Serve::Done
                });
                d.blocking.register(id, db, &ks, claimed, serve);
            })
            .await;
    }
    drop(tx);
    if take_locks {
        shards.unlock(&groups).await;
    }

    let (gone_tx, gone_rx) = oneshot::channel::<()>();
    {
        let mut d = shards.data.borrow_mut();
        d.blocking.gone.insert(client.id, gone_tx);
        d.stats.blocked_clients += 1;
        // A disconnection seen before the signal was registered.
        if d.clients
            .get(&client.id)
            .is_some_and(|c| c.borrow().close_requested)
        {
            d.blocking.client_gone(client.id);
        }
    }
    let value = async { Woken::Value(rx.next().await) };
    let gone = async {
        // A dropped sender (the table entry replaced) is not a disconnection.
        match gone_rx.await {
            Ok(()) => Woken::Gone,
            Err(_) => std::future::pending().await,
        }
    };
    let timer = async {
        // 0 waits forever; so does a timeout past a century (a timer that far would
        // overflow the clock).
        if timeout_ms == 0 || timeout_ms > 100 * 365 * 86_400_000 {
            std::future::pending::<()>().await;
        }
        glommio::timer::sleep(Duration::from_millis(timeout_ms)).await;
        Woken::Timeout
    };
    let woken = futures_lite::future::or(value, futures_lite::future::or(gone, timer)).await;
    let outcome = match woken {
        Woken::Value(Some((k, v))) => Outcome::Got(k, v),
        Woken::Value(None) => Outcome::Timeout,
        Woken::Timeout | Woken::Gone => {
            let is_gone = matches!(woken, Woken::Gone);
            let won = claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if won {
                if is_gone {
                    Outcome::Gone
                } else {
                    Outcome::Timeout
                }
            } else {
                // A shard claimed us first: its value is on the way.
                match rx.next().await {
                    Some((k, v)) if is_gone => {
                        let (op2, k2) = (op.clone(), k.clone());
                        shards
                            .run_on(shards.owner(&k), move |d| {
                                op2.restore(d, db, &k2, v);
                                super::blocking::serve_if_ready(d);
                            })
                            .await;
                        Outcome::Gone
                    }
                    Some((k, v)) => Outcome::Got(k, v),
                    None if is_gone => Outcome::Gone,
                    None => Outcome::Timeout,
                }
            }
        }
    };
    let closed = {
        let mut d = shards.data.borrow_mut();
        d.blocking.gone.remove(&client.id);
        d.stats.blocked_clients = d.stats.blocked_clients.saturating_sub(1);
        d.clients
            .get(&client.id)
            .is_none_or(|c| c.borrow().close_requested)
    };
    // Served while the connection was closing: nobody would read the reply, so the
    // value goes back where it came from.
    let outcome = match outcome {
        Outcome::Got(k, v) if closed => {
            let (op2, k2) = (op.clone(), k.clone());
            shards
                .run_on(shards.owner(&k), move |d| op2.restore(d, db, &k2, v))
                .await;
            Outcome::Gone
        }
        o => o,
    };
    for shard in involved {
        shards.run_on(shard, move |d| d.blocking.cancel(id)).await;
    }
    outcome
}
