//! The point-in-time cut of one database of one shard, without a copy of the data.
//!
//! When a snapshot starts, the shard bumps each database's epoch
//! ([`crate::storage::Db::snap_begin`]): every entry present then carries an older epoch
//! and belongs to the cut; entries inserted afterwards carry the new one and do not.
//! Every mutating path of the database (lookups returning `&mut`, set, remove, expiry,
//! TTL changes) first serializes an entry of the cut that is not written yet and stamps
//! it, so the snapshot holds the value as it was at the cut; the walker
//! ([`crate::storage::Db::snap_step`]) writes the others. Tables emptied by FLUSHDB /
//! FLUSHALL while a snapshot runs are detached here and walked too; SWAPDB moves whole
//! databases, and their [`DbSnap`] (which remembers the database number of the cut)
//! with them.
//!
//! [`DbSnap`] holds the bytes serialized since the walker last collected them; the shard
//! ships them to the writer as one chunk opened by SELECTDB.

use super::file::{write_entry, Recency};
use crate::storage::db::Table;
use crate::storage::Entry;

/// The running snapshot's state for one database.
pub struct DbSnap {
    /// The database number written in SELECTDB (the cut's, even after a SWAPDB).
    pub index: usize,
    /// The cut's time, Unix ms: keys expired at the cut are left out.
    pub cut_ms: u64,
    /// `rdbcompression`.
    pub compress: bool,
    /// Idle/frequency opcodes as the eviction policy asks.
    pub recency: Recency,
    /// Next slot the walker visits is `cursor - 1` (it walks down).
    pub cursor: usize,
    /// True once the snapshot failed: entries are stamped but not serialized.
    pub discard: bool,
    /// Keys written.
    pub keys: u64,
    out: Vec<u8>,
    detached: Vec<Table>,
}

impl DbSnap {
    /// The state of a snapshot of database `index` starting at `cut_ms`.
    pub fn new(index: usize, cut_ms: u64, compress: bool, recency: Recency) -> DbSnap {
        DbSnap {
            index,
            cut_ms,
            compress,
            recency,
            cursor: 0,
            discard: false,
            keys: 0,
            out: Vec::new(),
            detached: Vec::new(),
        }
    }

    /// Serializes one entry of the cut (the caller stamped it): left out when it had
    /// expired at the cut, or when the snapshot failed.
    pub fn write(&mut self, e: &Entry) {
        let expire_at = e.expire_at();
        if self.discard || (expire_at != 0 && expire_at <= self.cut_ms) {
            return;
        }
        if write_entry(&mut self.out, e.key(), e, self.compress, self.recency) {
            self.keys += 1;
        }
    }

    /// Keeps a table emptied by FLUSHDB/FLUSHALL for the walker.
    pub fn detach(&mut self, table: Table) {
        if !table.is_empty() {
            self.detached.push(table);
        }
    }

    /// True when no detached table is left.
    pub fn detached_empty(&self) -> bool {
        self.detached.is_empty()
    }

    /// Writes (and frees) up to `budget` entries of the detached tables. Returns false
    /// when there is nothing left.
    pub fn step_detached(&mut self, epoch: u8, budget: usize, visited: &mut usize) -> bool {
        let Some(mut t) = self.detached.pop() else {
            return false;
        };
        let mut n = 0;
        while n < budget {
            let Some(node) = t.pop() else {
                break;
            };
            n += 1;
            if node.entry().snap_epoch() != epoch {
                self.write(node.entry());
            }
        }
        *visited += n.max(1);
        if !t.is_empty() {
            self.detached.push(t);
        }
        true
    }

    /// Takes the bytes serialized since the last call.
    pub fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Bytes waiting to be collected.
    pub fn pending(&self) -> usize {
        self.out.len()
    }
}
