//! Per-shard bookkeeping for WATCH and keyspace events.
//!
//! Every write command that changes a key calls [`crate::commands::Ctx::modified`]
//! (Redis's `signalModifiedKey` + `notifyKeyspaceEvent`). That lands here:
//! - [`WatchTable::touch`] marks the transactions watching the key as dirty, so that
//!   their EXEC fails. A shard with no watched key pays one `is_empty` check.
//! - [`KeyEvent`]s are queued when `notify-keyspace-events` enables their class, and
//!   published by the pub/sub layer after the command.

use hashbrown::{HashMap, HashSet};

/// Identifies one client's WATCH set (the client id; ids are unique across shards).
pub type WatcherId = u64;

/// Keys watched on this shard and the watchers that saw one of their keys change.
#[derive(Default)]
pub struct WatchTable {
    keys: HashMap<(usize, Box<[u8]>), Vec<WatcherId>>,
    dirty: HashSet<WatcherId>,
}

impl WatchTable {
    /// True when no key of this shard is watched (the fast path of every write).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Starts watching `key` of database `db` for `watcher`.
    pub fn watch(&mut self, db: usize, key: &[u8], watcher: WatcherId) {
        let list = self.keys.entry((db, key.into())).or_default();
        if !list.contains(&watcher) {
            list.push(watcher);
        }
    }

    /// `key` of `db` changed: every watcher of it becomes dirty.
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(list) = self.keys.remove(&(db, Box::<[u8]>::from(key))) {
            self.dirty.extend(list);
        }
    }

    /// FLUSHDB, FLUSHALL, SWAPDB: marks dirty the watchers of every watched key of `db`
    /// (`None` = every database) for which `existed(db, key)` holds, as Redis's
    /// `touchAllWatchedKeysInDb` does (a key that did not exist is not changed by a flush).
    pub fn touch_db(&mut self, db: Option<usize>, mut existed: impl FnMut(usize, &[u8]) -> bool) {
        let dirty = &mut self.dirty;
        self.keys.retain(|(d, k), list| {
            if (db.is_none() || db == Some(*d)) && existed(*d, k) {
                dirty.extend(list.iter().copied());
                false
            } else {
                true
            }
        });
    }

    /// Ends `watcher`'s watch on this shard; returns true when one of its keys changed.
    pub fn unwatch(&mut self, watcher: WatcherId) -> bool {
        self.keys.retain(|_, list| {
            list.retain(|w| *w != watcher);
            !list.is_empty()
        });
        self.dirty.remove(&watcher)
    }

    /// True when one of `watcher`'s keys on this shard changed.
    pub fn is_dirty(&self, watcher: WatcherId) -> bool {
        self.dirty.contains(&watcher)
    }

    /// Number of watched keys (INFO `watching_clients` style figures).
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// A keyspace event waiting to be published (`__keyspace@db__:key` / `__keyevent@db__:event`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    /// Database.
    pub db: usize,
    /// Redis's event class character (`g`, `$`, `l`, `s`, `h`, `z`, `x`, `e`, `t`, `n`, `m`).
    pub class: u8,
    /// Event name (`set`, `del`, `lpush`, `expired`...).
    pub event: &'static str,
    /// The key.
    pub key: Box<[u8]>,
}

/// Bits of the `notify-keyspace-events` setting.
pub mod notify {
    /// `K`: publish on `__keyspace@<db>__:<key>`.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: publish on `__keyevent@<db>__:<event>`.
    pub const KEYEVENT: u32 = 1 << 1;

    /// The bit of an event class character, 0 for an unknown one.
    pub fn class_bit(class: u8) -> u32 {
        match class {
            b'g' => 1 << 2,
            b'$' => 1 << 3,
            b'l' => 1 << 4,
            b's' => 1 << 5,
            b'h' => 1 << 6,
            b'z' => 1 << 7,
            b'x' => 1 << 8,
            b'e' => 1 << 9,
            b't' => 1 << 10,
            b'm' => 1 << 11,
            b'n' => 1 << 12,
            b'd' => 1 << 13,
            _ => 0,
        }
    }

    /// Parses a `notify-keyspace-events` value as Redis does; `None` for a bad character.
    /// `A` is an alias for `g$lshzxetd`.
    pub fn parse(s: &[u8]) -> Option<u32> {
        let mut m = 0;
        for &c in s {
            m |= match c {
                b'K' => KEYSPACE,
                b'E' => KEYEVENT,
                b'A' => b"g$lshzxetd"
                    .iter()
                    .map(|&c| class_bit(c))
                    .fold(0, |a, b| a | b),
                _ => match class_bit(c) {
                    0 => return None,
                    b => b,
                },
            };
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_marks_watchers_dirty_once() {
        let mut t = WatchTable::default();
        t.watch(0, b"k", 7);
        t.watch(0, b"k", 8);
        t.watch(1, b"k", 9);
        t.touch(0, b"k");
        assert!(t.is_dirty(7) && t.is_dirty(8) && !t.is_dirty(9));
        assert!(t.unwatch(7));
        assert!(!t.unwatch(7));
        t.touch_db(Some(1), |_, _| false);
        assert!(
            !t.is_dirty(9),
            "a flush leaves watches of missing keys alone"
        );
        t.touch_db(Some(1), |_, _| true);
        assert!(t.unwatch(9));
        assert!(t.is_empty());
    }

    #[test]
    fn notify_flags_parse() {
        let all = notify::parse(b"A").unwrap();
        assert_eq!(
            all & notify::class_bit(b'm'),
            0,
            "A leaves out key-miss events"
        );
        assert_ne!(all & notify::class_bit(b'x'), 0);
        assert_eq!(
            notify::parse(b"KE").unwrap(),
            notify::KEYSPACE | notify::KEYEVENT
        );
        assert_eq!(notify::parse(b"").unwrap(), 0);
        assert!(notify::parse(b"Q").is_none());
    }
}
