//! The table of one database: a dense vector of entry blocks ([`Node`]) plus a hash
//! index of 4-byte positions into it.
//!
//! Per key this costs one 8-byte pointer in the vector and one 4-byte slot plus a
//! control byte in the index (hashbrown's SwissTable, at most 7/8 full): about 14 to 19
//! bytes, against IndexMap's 80-byte bucket (hash, key, entry) plus its 9-byte index
//! slot. The hash is not stored: growing the index re-reads each key from its block.
//!
//! Deletion moves the last entry into the freed position ("swap remove"), so a scan
//! that walks positions from the highest down never misses an entry present for the
//! whole scan (it may see one twice, which Redis allows too), and random sampling
//! (eviction, RANDOMKEY) is a uniform pick of a position.

use super::entry::{Entry, Node};
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The table of one database.
#[derive(Default)]
pub struct Table {
    nodes: Vec<Node>,
    index: HashTable<u32>,
    state: RandomState,
}

impl Table {
    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.state.hash_one(key)
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Position of `key`, if present.
    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        let h = self.hash(key);
        let nodes = &self.nodes;
        self.index
            .find(h, |&i| nodes[i as usize].key() == key)
            .map(|&i| i as usize)
    }

    /// The entry at `pos`.
    #[inline]
    pub fn entry(&self, pos: usize) -> &Entry {
        self.nodes[pos].entry()
    }

    /// The entry at `pos`, mutably.
    #[inline]
    pub fn entry_mut(&mut self, pos: usize) -> &mut Entry {
        self.nodes[pos].entry_mut()
    }

    /// The block at `pos`, mutably (to rebuild it; its key must not change).
    #[inline]
    pub fn node_mut(&mut self, pos: usize) -> &mut Node {
        &mut self.nodes[pos]
    }

    /// Adds a block whose key is not in the table. Returns its position.
    pub fn push(&mut self, node: Node) -> usize {
        let pos = self.nodes.len();
        assert!(pos < u32::MAX as usize, "table full");
        let h = self.hash(node.key());
        self.nodes.push(node);
        let (nodes, state) = (&self.nodes, &self.state);
        self.index
            .insert_unique(h, pos as u32, |&i| state.hash_one(nodes[i as usize].key()));
        pos
    }

    /// Replaces the block at `pos` by one with the same key; returns the old one.
    pub fn replace(&mut self, pos: usize, node: Node) -> Node {
        debug_assert_eq!(node.entry().key(), self.nodes[pos].entry().key());
        std::mem::replace(&mut self.nodes[pos], node)
    }

    /// Removes the block at `pos`; the last block moves into `pos`.
    pub fn swap_remove(&mut self, pos: usize) -> Node {
        let h = self.hash(self.nodes[pos].key());
        if let Ok(slot) = self.index.find_entry(h, |&i| i as usize == pos) {
            slot.remove();
        }
        let last = self.nodes.len() - 1;
        if pos != last {
            let hl = self.hash(self.nodes[last].key());
            if let Some(slot) = self.index.find_mut(hl, |&i| i as usize == last) {
                *slot = pos as u32;
            }
        }
        self.nodes.swap_remove(pos)
    }

    /// Removes and returns the last block (used to drain detached tables).
    pub fn pop(&mut self) -> Option<Node> {
        if self.nodes.is_empty() {
            return None;
        }
        Some(self.swap_remove(self.nodes.len() - 1))
    }

    /// Iterates over the entries in position order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.nodes.iter().map(Node::entry)
    }

    /// Iterates over the entries mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.nodes.iter_mut().map(Node::entry_mut)
    }

    /// Entries the table holds without growing.
    pub fn capacity(&self) -> usize {
        self.index.capacity().min(self.nodes.capacity())
    }

    /// Shrinks the table to room for at least `min` entries.
    pub fn shrink_to(&mut self, min: usize) {
        self.nodes.shrink_to(min);
        let (nodes, state) = (&self.nodes, &self.state);
        self.index
            .shrink_to(min, |&i| state.hash_one(nodes[i as usize].key()));
    }

    /// Bytes of the table itself at its current capacity (the pointer vector and the
    /// index with its control bytes), not counting the blocks.
    pub fn bytes(&self) -> usize {
        table_bytes_for(self.nodes.capacity(), self.index.capacity())
    }

    /// Bytes the table would allocate for its next insert when it is full (vector and
    /// index double), 0 when it has room.
    pub fn growth_bytes(&self) -> usize {
        let len = self.nodes.len();
        if self.index.capacity() > len && self.nodes.capacity() > len {
            return 0;
        }
        let cap = len.max(1) * 2;
        table_bytes_for(cap, cap)
    }
}

/// Bytes of a pointer vector with room for `vec_cap` blocks and an index with room for
/// `index_cap` positions (buckets at 7/8 load, rounded to a power of two; 4-byte slots
/// and a control byte each).
fn table_bytes_for(vec_cap: usize, index_cap: usize) -> usize {
    let buckets = if index_cap == 0 {
        0
    } else {
        (index_cap * 8 / 7).next_power_of_two()
    };
    vec_cap * std::mem::size_of::<Node>() + buckets * 5
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Value;

    #[test]
    fn insert_find_and_swap_remove_keep_the_index_right() {
        let mut t = Table::default();
        for i in 0..1000u32 {
            let k = format!("k{i}");
            assert_eq!(
                t.push(Node::new(k.as_bytes(), Value::Int(i as i64), 0, 0, 0)),
                i as usize
            );
        }
        for i in (0..1000u32).step_by(3) {
            let pos = t.find(format!("k{i}").as_bytes()).unwrap();
            t.swap_remove(pos);
        }
        assert_eq!(t.len(), 1000 - 334);
        for i in 0..1000u32 {
            let found = t.find(format!("k{i}").as_bytes());
            assert_eq!(found.is_some(), i % 3 != 0, "k{i}");
            if let Some(p) = found {
                assert_eq!(t.entry(p).key(), format!("k{i}").as_bytes());
            }
        }
        t.shrink_to(0);
        assert!(t.find(b"k1").is_some());
        while t.pop().is_some() {}
        assert!(t.is_empty() && t.find(b"k1").is_none());
    }
}
