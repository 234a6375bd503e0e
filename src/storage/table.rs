//! The table of one database: a dense vector of entry blocks plus a hash index of
//! 4-byte positions into it.
//!
//! Per key this costs a 6-byte block pointer in the vector and, in the index, a 4-byte
//! position plus a control byte per slot at 58% to 87.5% fill: about 12 to 15 bytes,
//! against IndexMap's 80-byte bucket plus its 9-byte index slot, or the 18 to 27 bytes
//! of a pointer vector with hashbrown's power-of-two index (docs/keyspace.md). The hash
//! is not stored: rebuilding the index re-reads each key from its block.
//!
//! The index ([`Index`], in `index.rs`) is a directory of small SwissTable segments laid
//! out for size rather than for the last nanosecond: groups of 8 slots with their 8
//! control bytes in one 40-byte record, any number of groups per segment, growth by
//! half (not doubling) when 7 of 8 slots are used, and a split in two once a segment
//! would pass 4096 groups. A growth re-hashes one segment's keys, never the whole
//! table's, so an insert pauses for a millisecond at most.
//!
//! Deletion moves the last entry into the freed position ("swap remove"), so a scan
//! that walks positions from the highest down never misses an entry present for the
//! whole scan (it may see one twice, which Redis allows too), and random sampling
//! (eviction, RANDOMKEY) is a uniform pick of a position.
//!
//! The pointer vector is kept in chunks of 2^20 (6 MiB) that never move, so growing it
//! copies at most the first chunk. It does not ask for transparent huge pages: on this
//! project's VM each 2 MiB huge-page fault stalled the shard 4-5 ms, and pipelined and
//! single GETs over 1M keys measured the same without them (docs/keyspace.md).

use super::chunked::ChunkVec;
use super::entry::{entry_at, entry_at_mut, key_at, Entry, Node};
use super::index::{prefetch_span, Index, Keys};
use foldhash::fast::RandomState;
use std::hash::BuildHasher;
use std::ptr::NonNull;

/// The table of one database.
#[derive(Default)]
pub struct Table {
    nodes: Nodes,
    index: Index,
    state: RandomState,
}

/// The block pointers, in chunks of 2^20 (6 MiB): growing never copies more than the
/// first chunk.
type Nodes = ChunkVec<PackedPtr, 20>;

/// A block pointer in 6 bytes (user-space addresses fit in 48 bits on x86-64 and
/// AArch64; [`PackedPtr::new`] checks it).
#[derive(Clone, Copy)]
#[repr(C, packed)]
struct PackedPtr([u8; 6]);

impl PackedPtr {
    #[inline]
    fn new(p: NonNull<u8>) -> PackedPtr {
        let a = p.as_ptr() as usize as u64;
        assert!(a >> 48 == 0, "block address {a:#x} beyond 48 bits");
        let b = a.to_le_bytes();
        PackedPtr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    #[inline]
    fn get(self) -> NonNull<u8> {
        let b = self.0;
        let a = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0]);
        // SAFETY: only built by `new` from a non-null pointer.
        unsafe { NonNull::new_unchecked(a as usize as *mut u8) }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        for p in self.nodes.iter() {
            // SAFETY: the table owns every block it points at, and drops each once.
            drop(unsafe { Node::from_raw(p.get()) });
        }
    }
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

    #[inline]
    fn key_of(&self, pos: usize) -> &[u8] {
        // SAFETY: the block lives as long as the table holds it, and `&self` keeps it.
        unsafe { key_at(self.nodes[pos].get()) }
    }

    /// Position of `key`, if present.
    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        let h = self.hash(key);
        let nodes = &self.nodes;
        // SAFETY (closure): as in `key_of`.
        self.index
            .find(h, |i| unsafe { key_at(nodes[i as usize].get()) } == key)
            .map(|(_, i)| i as usize)
    }

    /// Starts loading into the cache what looking up each of `keys` will read: its
    /// first index group, then the block pointer of the first slot whose tag matches,
    /// then that block. A lookup reads those three one after the other, each a cache
    /// miss in a table of millions of keys; done here for a batch (a pipeline's next
    /// keys), the misses of all keys overlap, stage by stage. Only hints: nothing
    /// here changes what a lookup finds.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        const MAX: usize = PREFETCH_BATCH;
        let n = keys.len().min(MAX);
        if n == 0 || self.index.is_empty() {
            return;
        }
        let mut hashes = [0u64; MAX];
        for i in 0..n {
            let h = self.hash(keys[i]);
            hashes[i] = h;
            self.index.prefetch_group(h);
        }
        let mut blocks = [usize::MAX; MAX];
        for i in 0..n {
            if let Some(pos) = self.index.first_candidate(hashes[i]) {
                let pos = pos as usize;
                if pos < self.nodes.len() {
                    prefetch_span(
                        &self.nodes[pos] as *const PackedPtr as *const u8,
                        std::mem::size_of::<PackedPtr>(),
                    );
                    blocks[i] = pos;
                }
            }
        }
        for &pos in &blocks[..n] {
            if pos != usize::MAX {
                // The head, key and a short value: the block's first 64 bytes, which
                // may straddle two cache lines.
                prefetch_span(self.nodes[pos].get().as_ptr(), 64);
            }
        }
    }

    /// The entry at `pos`.
    #[inline]
    pub fn entry(&self, pos: usize) -> &Entry {
        // SAFETY: as in `key_of`.
        unsafe { entry_at(self.nodes[pos].get()) }
    }

    /// The entry at `pos`, mutably.
    #[inline]
    pub fn entry_mut(&mut self, pos: usize) -> &mut Entry {
        // SAFETY: `&mut self` gives exclusive access to the block.
        unsafe { entry_at_mut(self.nodes[pos].get()) }
    }

    /// Runs `f` on the block at `pos` as an owned [`Node`], which `f` may rebuild
    /// (reallocate); its key must not change.
    pub fn with_node_mut<R>(&mut self, pos: usize, f: impl FnOnce(&mut Node) -> R) -> R {
        // SAFETY: the table owns the block; the Node is handed back (as a pointer) below,
        // so exactly one owner exists at every moment. Should `f` panic, the guard aborts:
        // the table would otherwise keep a pointer to a block the unwinding freed.
        let mut node = unsafe { Node::from_raw(self.nodes[pos].get()) };
        let guard = AbortOnUnwind;
        let r = f(&mut node);
        std::mem::forget(guard);
        self.nodes[pos] = PackedPtr::new(node.into_raw());
        r
    }

    /// Adds a block whose key is not in the table. Returns its position.
    pub fn push(&mut self, node: Node) -> usize {
        let pos = self.nodes.len();
        assert!(pos < u32::MAX as usize, "table full");
        let h = self.hash(node.key());
        self.nodes.push(PackedPtr::new(node.into_raw()));
        let keys = TableKeys {
            nodes: &self.nodes,
            state: &self.state,
        };
        self.index.insert(h, pos as u32, &keys);
        pos
    }

    /// Rebuilds the index, sized for `items` keys, from the blocks' keys.
    fn rebuild_index(&mut self, items: usize) {
        let mut index = Index::with_capacity(items);
        let keys = TableKeys {
            nodes: &self.nodes,
            state: &self.state,
        };
        let n = self.nodes.len() as u32;
        for pos in 0..n {
            if pos + 16 < n {
                keys.prefetch_key(pos + 16);
            }
            index.insert(keys.hash_at(pos), pos, &keys);
        }
        self.index = index;
    }

    /// Replaces the block at `pos` by one with the same key; returns the old one.
    pub fn replace(&mut self, pos: usize, node: Node) -> Node {
        debug_assert_eq!(node.entry().key(), self.entry(pos).key());
        let old = std::mem::replace(&mut self.nodes[pos], PackedPtr::new(node.into_raw()));
        // SAFETY: the table owned the old block; ownership moves to the caller.
        unsafe { Node::from_raw(old.get()) }
    }

    /// Removes the block at `pos`; the last block moves into `pos`.
    pub fn swap_remove(&mut self, pos: usize) -> Node {
        let h = self.hash(self.key_of(pos));
        if let Some((slot, _)) = self.index.find(h, |i| i as usize == pos) {
            self.index.remove(slot);
        }
        let last = self.nodes.len() - 1;
        if pos != last {
            let hl = self.hash(self.key_of(last));
            if let Some((slot, _)) = self.index.find(hl, |i| i as usize == last) {
                self.index.set(slot, pos as u32);
            }
        }
        let p = self.nodes.swap_remove(pos);
        // SAFETY: the table owned the block; ownership moves to the caller.
        unsafe { Node::from_raw(p.get()) }
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
        // SAFETY: as in `key_of`.
        self.nodes.iter().map(|p| unsafe { entry_at(p.get()) })
    }

    /// Iterates over the entries mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        // SAFETY: `&mut self` gives exclusive access; each block is yielded once.
        self.nodes
            .iter_mut()
            .map(|p| unsafe { entry_at_mut(p.get()) })
    }

    /// Entries the table holds without growing.
    pub fn capacity(&self) -> usize {
        (self.index.len() + self.index.growth_left()).min(self.nodes.capacity())
    }

    /// Shrinks the table to room for at least `min` entries.
    pub fn shrink_to(&mut self, min: usize) {
        let min = min.max(self.nodes.len());
        self.nodes.shrink_to(min);
        self.rebuild_index(min);
    }

    /// Bytes of the table itself at its current capacity (the pointer vector and the
    /// index), not counting the blocks.
    pub fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<PackedPtr>() + self.index.bytes()
    }

    /// Bytes the table would allocate for its next insert when it is full (a new
    /// pointer chunk, or the first one grown by half; a segment of the index grown or
    /// split), 0 when it has room.
    pub fn growth_bytes(&self) -> usize {
        let len = self.nodes.len();
        let mut bytes = 0;
        if self.nodes.capacity() == len {
            bytes += if len < Nodes::CHUNK {
                (len + (len / 2).max(4)).min(Nodes::CHUNK)
            } else {
                Nodes::CHUNK
            } * std::mem::size_of::<PackedPtr>();
        }
        bytes + self.index.growth_bytes()
    }
}

/// The table's keys as the index sees them when it re-hashes a segment.
struct TableKeys<'a> {
    nodes: &'a Nodes,
    state: &'a RandomState,
}

impl Keys for TableKeys<'_> {
    #[inline]
    fn hash_at(&self, v: u32) -> u64 {
        // SAFETY: the table holds every block it points at while it is borrowed.
        self.state
            .hash_one(unsafe { key_at(self.nodes[v as usize].get()) })
    }

    #[inline]
    fn prefetch_pointer(&self, v: u32) {
        if let Some(p) = self.nodes.get(v as usize) {
            prefetch_span(p as *const PackedPtr as *const u8, 6);
        }
    }

    #[inline]
    fn prefetch_key(&self, v: u32) {
        if let Some(p) = self.nodes.get(v as usize) {
            prefetch_span(p.get().as_ptr(), 32);
        }
    }
}

/// Most keys [`Table::prefetch`] handles in one call.
pub const PREFETCH_BATCH: usize = 16;

/// Aborts the process if dropped during unwinding (see [`Table::with_node_mut`]).
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("libellule: panic while a key's block was out of its table");
        std::process::abort();
    }
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

    /// Random inserts and deletes against a std HashMap model, with enough churn to
    /// fill groups with tombstones and force rebuilds at the same size.
    #[test]
    fn churn_matches_a_model() {
        use std::collections::HashMap;
        let mut t = Table::default();
        let mut model: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..200_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = format!("key:{}", x % 5000).into_bytes();
            if step % 7 == 0 {
                // A hint over present, absent and just-removed keys: changes nothing.
                let other = format!("key:{}", (x >> 20) % 6000).into_bytes();
                t.prefetch(&[&k, &other, b"", &k]);
            }
            match (t.find(&k), model.contains_key(&k)) {
                (Some(pos), true) => {
                    if x & 0x100 != 0 {
                        let n = t.swap_remove(pos);
                        assert_eq!(n.key(), &k[..]);
                        model.remove(&k);
                    } else {
                        let old = t.replace(pos, Node::new(&k, Value::Int(step), 0, 0, 0));
                        drop(old);
                        model.insert(k, step);
                    }
                }
                (None, false) => {
                    t.push(Node::new(&k, Value::Int(step), 0, 0, 0));
                    model.insert(k, step);
                }
                (a, b) => panic!("step {step}: table {a:?}, model {b}"),
            }
            assert_eq!(t.len(), model.len());
            assert!(t.index.len() == t.len());
        }
        for (k, v) in &model {
            let pos = t.find(k).expect("present");
            assert!(matches!(t.entry(pos).value(), crate::storage::ValueRef::Int(n) if n == *v));
        }
        t.shrink_to(0);
        for k in model.keys() {
            assert!(t.find(k).is_some());
        }
    }

    #[test]
    fn segments_split_and_keep_every_key_findable() {
        let mut t = Table::default();
        let n = 150_000u32;
        let key = |i: u32| format!("split:{i}").into_bytes();
        for i in 0..n {
            t.push(Node::new(&key(i), Value::Int(i as i64), 0, 0, 0));
        }
        let check = |t: &Table| {
            t.index.check(&TableKeys {
                nodes: &t.nodes,
                state: &t.state,
            })
        };
        check(&t);
        assert!(t.index.segments() >= 4, "{} segments", t.index.segments());
        assert!(t.index.bytes() < 150_000 * 8, "fill stays above 58%");
        // Remove every third key (by position order), then put some back.
        for i in (0..n).step_by(3) {
            let pos = t.find(&key(i)).expect("present");
            drop(t.swap_remove(pos));
        }
        check(&t);
        for i in (0..n).step_by(6) {
            t.push(Node::new(&key(i), Value::Int(0), 0, 0, 0));
        }
        check(&t);
        for i in 0..n {
            assert_eq!(
                t.find(&key(i)).is_some(),
                i % 3 != 0 || i % 6 == 0,
                "key {i}"
            );
        }
        t.shrink_to(0);
        check(&t);
        assert_eq!(t.index.len(), t.len());
        for i in (0..n).step_by(6) {
            assert!(t.find(&key(i)).is_some());
        }
    }

    #[test]
    fn prefetch_accepts_any_batch() {
        let mut t = Table::default();
        t.prefetch(&[b"a"]);
        t.push(Node::new(b"a", Value::Int(1), 0, 0, 0));
        let many: Vec<Vec<u8>> = (0..40).map(|i| format!("k{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(|k| &k[..]).collect();
        // More keys than one batch: the rest are ignored.
        t.prefetch(&refs);
        t.prefetch(&[]);
        assert_eq!(t.find(b"a"), Some(0));
    }

    #[test]
    fn packed_pointers_round_trip_and_tags_do_not_confuse_lookups() {
        // Many keys in one group's worth of tags: find must compare keys, not tags.
        let mut t = Table::default();
        for i in 0..20_000u32 {
            t.push(Node::new(&i.to_le_bytes(), Value::Int(i as i64), 0, 0, 0));
        }
        for i in 0..20_000u32 {
            let pos = t.find(&i.to_le_bytes()).unwrap();
            assert_eq!(t.entry(pos).key(), &i.to_le_bytes()[..]);
        }
        assert!(t.find(b"absent").is_none());
        assert!(t.bytes() < 20_000 * 16, "{} bytes", t.bytes());
    }
}
