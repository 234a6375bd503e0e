//! Key locks that make cross-shard commands atomic.
//!
//! A command whose keys span shards (MSET, RENAME, COPY, cross-shard MGET...) locks its
//! keys on every shard involved, one shard at a time in ascending shard order, runs, and
//! unlocks. Ordered acquisition means no deadlock; waiters are granted in FIFO order
//! (a waiter is never overtaken by a later one that wants one of its keys), so there is no
//! starvation. Commands that run on one shard never take locks: they only check, when the
//! shard's lock table is not empty, that none of their keys is held, and otherwise wait
//! their turn like a locker would. See docs/decisions.md.

use futures_channel::oneshot;
use std::collections::VecDeque;

/// A lockable key: database index and key bytes.
pub type LockKey = (usize, Vec<u8>);

struct Waiter {
    keys: Vec<LockKey>,
    tx: oneshot::Sender<()>,
}

/// The lock table of one shard.
#[derive(Default)]
pub struct KeyLocks {
    held: hashbrown::HashMap<LockKey, u32>,
    waiting: VecDeque<Waiter>,
}

impl KeyLocks {
    /// True when no key is locked and nobody waits (the common case: one branch).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.waiting.is_empty()
    }

    /// True when `key` of `db` is held or wanted by a waiter.
    pub fn is_locked(&self, db: usize, key: &[u8]) -> bool {
        if self.is_empty() {
            return false;
        }
        let k = (db, key.to_vec());
        self.held.contains_key(&k) || self.waiting.iter().any(|w| w.keys.contains(&k))
    }

    fn conflicts(&self, keys: &[LockKey]) -> bool {
        keys.iter().any(|k| self.held.contains_key(k))
    }

    fn grab(&mut self, keys: &[LockKey]) {
        for k in keys {
            *self.held.entry(k.clone()).or_insert(0) += 1;
        }
    }

    /// Locks `keys` now if none is held and no earlier waiter wants them; otherwise queues
    /// the request and returns a receiver that resolves when the locks are granted.
    pub fn acquire(&mut self, keys: Vec<LockKey>) -> Option<oneshot::Receiver<()>> {
        let queued_conflict = self
            .waiting
            .iter()
            .any(|w| w.keys.iter().any(|k| keys.contains(k)));
        if !queued_conflict && !self.conflicts(&keys) {
            self.grab(&keys);
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.push_back(Waiter { keys, tx });
        Some(rx)
    }

    /// Releases `keys` and grants queued waiters that can now proceed, in FIFO order.
    pub fn release(&mut self, keys: &[LockKey]) {
        for k in keys {
            if let Some(c) = self.held.get_mut(k) {
                *c -= 1;
                if *c == 0 {
                    self.held.remove(k);
                }
            }
        }
        self.grant_waiters();
    }

    fn grant_waiters(&mut self) {
        loop {
            let mut granted_any = false;
            let mut blocked: Vec<LockKey> = Vec::new();
            let mut i = 0;
            while i < self.waiting.len() {
                let w = &self.waiting[i];
                let blocked_by_earlier = w.keys.iter().any(|k| blocked.contains(k));
                if !blocked_by_earlier && !self.conflicts(&w.keys) {
                    let w = self.waiting.remove(i).expect("index in range");
                    self.grab(&w.keys);
                    if w.tx.send(()).is_err() {
                        // The requester is gone: undo and look again.
                        for k in &w.keys {
                            if let Some(c) = self.held.get_mut(k) {
                                *c -= 1;
                                if *c == 0 {
                                    self.held.remove(k);
                                }
                            }
                        }
                        granted_any = true;
                        break;
                    }
                    granted_any = false;
                    continue;
                }
                blocked.extend(w.keys.iter().cloned());
                i += 1;
            }
            if !granted_any {
                break;
            }
        }
    }
}
