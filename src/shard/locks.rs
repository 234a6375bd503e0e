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

/// The database index of the whole-shard lock: a [`LockKey`] `(ALL_KEYS, [])` conflicts
/// with every key of the shard (transactions and scripts holding commands that read or
/// write the whole keyspace, such as FLUSHALL or KEYS inside MULTI).
pub const ALL_KEYS: usize = usize::MAX;

/// The whole-shard lock key.
pub fn whole_shard() -> LockKey {
    (ALL_KEYS, Vec::new())
}

/// True when two key sets conflict (share a key, or one holds the whole shard).
fn overlaps(a: &[LockKey], b: &[LockKey]) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let whole = |s: &[LockKey]| s.iter().any(|k| k.0 == ALL_KEYS);
    whole(a) || whole(b) || a.iter().any(|k| b.contains(k))
}

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
        let k = [(db, key.to_vec())];
        self.conflicts(&k) || self.waiting.iter().any(|w| overlaps(&w.keys, &k))
    }

    fn conflicts(&self, keys: &[LockKey]) -> bool {
        if self.held.is_empty() {
            return false;
        }
        if self.held.contains_key(&whole_shard()) || keys.iter().any(|k| k.0 == ALL_KEYS) {
            return true;
        }
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
        let queued_conflict = self.waiting.iter().any(|w| overlaps(&w.keys, &keys));
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
                let blocked_by_earlier = overlaps(&w.keys, &blocked);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> LockKey {
        (0, s.as_bytes().to_vec())
    }

    #[test]
    fn whole_shard_lock_conflicts_with_every_key() {
        let mut l = KeyLocks::default();
        assert!(l.acquire(vec![k("a")]).is_none());
        let mut all = l.acquire(vec![whole_shard()]).expect("waits for a");
        assert!(
            l.is_locked(0, b"zzz"),
            "queued whole-shard lock blocks new keys"
        );
        let mut b = l
            .acquire(vec![k("b")])
            .expect("queued behind the whole-shard lock");
        l.release(&[k("a")]);
        assert_eq!(all.try_recv(), Ok(Some(())));
        assert_eq!(b.try_recv(), Ok(None));
        l.release(&[whole_shard()]);
        assert_eq!(b.try_recv(), Ok(Some(())));
        l.release(&[k("b")]);
        assert!(l.is_empty());
    }

    #[test]
    fn fifo_grants_in_order() {
        let mut l = KeyLocks::default();
        assert!(l.acquire(vec![k("a"), k("b")]).is_none());
        let mut w1 = l.acquire(vec![k("b")]).unwrap();
        let mut w2 = l.acquire(vec![k("b"), k("c")]).unwrap();
        l.release(&[k("a"), k("b")]);
        assert_eq!(w1.try_recv(), Ok(Some(())));
        assert_eq!(w2.try_recv(), Ok(None));
        l.release(&[k("b")]);
        assert_eq!(w2.try_recv(), Ok(Some(())));
    }
}
