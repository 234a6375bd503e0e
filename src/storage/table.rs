//! The table of one database: a dense vector of entry blocks plus a hash index of
//! 4-byte positions into it.
//!
//! Per key this costs a 6-byte block pointer in the vector and, in the index, a 4-byte
//! position plus a control byte per slot at 58% to 87.5% fill: about 12 to 15 bytes,
//! against IndexMap's 80-byte bucket plus its 9-byte index slot, or the 18 to 27 bytes
//! of a pointer vector with hashbrown's power-of-two index (docs/keyspace.md). The hash
//! is not stored: rebuilding the index re-reads each key from its block.
//!
//! The index ([`Index`]) is a SwissTable laid out for size rather than for the last
//! nanosecond: groups of 8 slots with their 8 control bytes (7 bits of the hash, or
//! empty, or deleted) in one 40-byte record, any number of groups (a key's first group
//! is picked by multiplying its hash by the group count, so the table needs no
//! power-of-two size), linear probing over groups, and growth by half (not doubling)
//! when 7 of 8 slots are used. Rebuilding re-inserts every key at once (as hashbrown
//! does); it costs about the same per key as before, one and a half times as often.
//!
//! Deletion moves the last entry into the freed position ("swap remove"), so a scan
//! that walks positions from the highest down never misses an entry present for the
//! whole scan (it may see one twice, which Redis allows too), and random sampling
//! (eviction, RANDOMKEY) is a uniform pick of a position.
//!
//! Arrays of 4 MiB and more ask the kernel for transparent huge pages (`madvise`): a
//! lookup in a table of millions of keys otherwise pays a TLB miss (a nested page walk
//! on a VM) per cache miss.

use super::entry::{entry_at, entry_at_mut, key_at, Entry, Node};
use foldhash::fast::RandomState;
use std::hash::BuildHasher;
use std::ptr::NonNull;

/// The table of one database.
#[derive(Default)]
pub struct Table {
    nodes: Vec<PackedPtr>,
    index: Index,
    state: RandomState,
}

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
        for p in self.nodes.drain(..) {
            // SAFETY: the table owns every block it points at.
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
        if n == 0 || self.index.groups.is_empty() {
            return;
        }
        let mut hashes = [0u64; MAX];
        for i in 0..n {
            let h = self.hash(keys[i]);
            let (g, _) = self.index.start(h);
            hashes[i] = h;
            prefetch_span(
                &self.index.groups[g] as *const Group as *const u8,
                GROUP_BYTES,
            );
        }
        let mut blocks = [usize::MAX; MAX];
        for i in 0..n {
            let (g, tag) = self.index.start(hashes[i]);
            let group = &self.index.groups[g];
            let x = group.ctrl ^ (LO * tag as u64);
            let m = x.wrapping_sub(LO) & !x & HI;
            if m != 0 {
                let pos = group.slots[(m.trailing_zeros() / 8) as usize] as usize;
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
        if self.index.growth_left == 0 {
            // Rebuilt from the blocks already in: the new one is inserted below.
            self.rebuild_index(Index::groups_for((self.index.items + 1) * 3 / 2));
        }
        if self.nodes.len() == self.nodes.capacity() {
            self.grow_nodes();
        }
        self.nodes.push(PackedPtr::new(node.into_raw()));
        self.index.insert(h, pos as u32);
        pos
    }

    /// Grows the pointer vector by half (not doubling: it is 6 bytes per key of the
    /// whole keyspace).
    fn grow_nodes(&mut self) {
        let extra = (self.nodes.capacity() / 2).max(16);
        self.nodes.reserve_exact(extra);
        advise_huge(
            self.nodes.as_ptr() as *const u8,
            self.nodes.capacity() * std::mem::size_of::<PackedPtr>(),
        );
    }

    /// Rebuilds the index with `groups` groups from the blocks' keys.
    fn rebuild_index(&mut self, groups: usize) {
        let mut index = Index::with_groups(groups);
        for pos in 0..self.nodes.len() {
            index.insert(self.hash(self.key_of(pos)), pos as u32);
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
        (self.index.items + self.index.growth_left).min(self.nodes.capacity())
    }

    /// Shrinks the table to room for at least `min` entries.
    pub fn shrink_to(&mut self, min: usize) {
        let min = min.max(self.nodes.len());
        self.nodes.shrink_to(min);
        self.rebuild_index(Index::groups_for(min));
    }

    /// Bytes of the table itself at its current capacity (the pointer vector and the
    /// index), not counting the blocks.
    pub fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<PackedPtr>() + self.index.bytes()
    }

    /// Bytes the table would allocate for its next insert when it is full (the vector
    /// or the index grows by half; the old ones are freed after the move), 0 when it has
    /// room.
    pub fn growth_bytes(&self) -> usize {
        let len = self.nodes.len();
        let mut bytes = 0;
        if self.nodes.capacity() == len {
            bytes += (len + (len / 2).max(16)) * std::mem::size_of::<PackedPtr>();
        }
        if self.index.growth_left == 0 {
            bytes += Index::groups_for((self.index.items + 1) * 3 / 2) * GROUP_BYTES;
        }
        bytes
    }
}

/// Most keys [`Table::prefetch`] handles in one call.
pub const PREFETCH_BATCH: usize = 16;

/// Asks the CPU to load the cache lines of `len` bytes at `p` (a hint: no fault, no
/// effect on what is read later).
#[inline(always)]
fn prefetch_span(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(len - 1) as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Aborts the process if dropped during unwinding (see [`Table::with_node_mut`]).
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("libellule: panic while a key's block was out of its table");
        std::process::abort();
    }
}

/// Asks for transparent huge pages under `[p, p + len)` when it spans at least two
/// whole 2 MiB pages (a hint: refused or unsupported is fine).
fn advise_huge(p: *const u8, len: usize) {
    const HUGE: usize = 2 << 20;
    if len < 2 * HUGE {
        return;
    }
    let start = (p as usize + HUGE - 1) & !(HUGE - 1);
    let end = (p as usize + len) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside a live allocation of ours; MADV_HUGEPAGE only
        // changes how it is backed, never its contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// Slots per group.
const GROUP: usize = 8;
/// Used slots per group at most (7/8 fill).
const GROUP_MAX: usize = 7;
/// Bytes of one group.
const GROUP_BYTES: usize = std::mem::size_of::<Group>();
/// Control byte of an empty slot (a lookup stops at a group that has one).
const EMPTY: u8 = 0xFF;
/// Control byte of a deleted slot (a tombstone: lookups go on past it).
const DELETED: u8 = 0x80;
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Eight slots and their control bytes (byte `i` of `ctrl` is slot `i`'s: `EMPTY`,
/// `DELETED`, or 7 bits of the hash of the key it holds).
#[derive(Clone, Copy)]
#[repr(C)]
struct Group {
    ctrl: u64,
    slots: [u32; GROUP],
}

/// The hash index: a SwissTable of 4-byte positions (see the module docs).
#[derive(Default)]
struct Index {
    groups: Vec<Group>,
    /// Slots holding a position.
    items: usize,
    /// Inserts left before the index must be rebuilt (empty slots within the 7/8 fill,
    /// minus tombstones).
    growth_left: usize,
}

/// A slot of the index: (group, slot in group).
type SlotRef = (usize, usize);

impl Index {
    /// Groups that hold `items` positions at most 7/8 full.
    fn groups_for(items: usize) -> usize {
        items.div_ceil(GROUP_MAX).max(1)
    }

    fn with_groups(n: usize) -> Index {
        let groups = vec![
            Group {
                ctrl: u64::MAX,
                slots: [0; GROUP],
            };
            n
        ];
        advise_huge(groups.as_ptr() as *const u8, n * GROUP_BYTES);
        Index {
            groups,
            items: 0,
            growth_left: n * GROUP_MAX,
        }
    }

    fn bytes(&self) -> usize {
        self.groups.capacity() * GROUP_BYTES
    }

    /// The first group of a hash and its 7-bit tag.
    #[inline]
    fn start(&self, h: u64) -> (usize, u8) {
        let g = ((h as u128 * self.groups.len() as u128) >> 64) as usize;
        (g, (h & 0x7F) as u8)
    }

    /// The slot holding a position for which `eq` holds among those with `h`'s tag.
    #[inline]
    fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<(SlotRef, u32)> {
        let n = self.groups.len();
        if n == 0 {
            return None;
        }
        let (mut g, tag) = self.start(h);
        for _ in 0..n {
            let group = &self.groups[g];
            let x = group.ctrl ^ (LO * tag as u64);
            // Bytes equal to the tag (with rare false positives on other full slots,
            // which the comparison rejects).
            let mut m = x.wrapping_sub(LO) & !x & HI;
            while m != 0 {
                let s = (m.trailing_zeros() / 8) as usize;
                let v = group.slots[s];
                if eq(v) {
                    return Some(((g, s), v));
                }
                m &= m - 1;
            }
            if match_empty(group.ctrl) != 0 {
                return None;
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
        None
    }

    /// Inserts a position (its key is not in the index); the caller made room.
    #[inline]
    fn insert(&mut self, h: u64, v: u32) {
        let n = self.groups.len();
        let (mut g, tag) = self.start(h);
        loop {
            let group = &mut self.groups[g];
            let free = group.ctrl & HI;
            if free != 0 {
                let s = (free.trailing_zeros() / 8) as usize;
                let was_empty = (group.ctrl >> (s * 8)) as u8 == EMPTY;
                set_ctrl(&mut group.ctrl, s, tag);
                group.slots[s] = v;
                self.items += 1;
                if was_empty {
                    self.growth_left -= 1;
                }
                return;
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
    }

    /// Empties a slot. A group that still has an empty slot was never full, so no
    /// lookup went past it: its slot becomes empty again; otherwise a tombstone.
    fn remove(&mut self, (g, s): SlotRef) {
        let group = &mut self.groups[g];
        if match_empty(group.ctrl) != 0 {
            set_ctrl(&mut group.ctrl, s, EMPTY);
            self.growth_left += 1;
        } else {
            set_ctrl(&mut group.ctrl, s, DELETED);
        }
        self.items -= 1;
    }

    /// Overwrites the position in a slot.
    fn set(&mut self, (g, s): SlotRef, v: u32) {
        self.groups[g].slots[s] = v;
    }
}

/// High bit set in each byte of `ctrl` that is `EMPTY` (0xFF: bits 7 and 6 set; a
/// tombstone 0x80 has bit 6 clear, a full slot bit 7 clear).
#[inline]
fn match_empty(ctrl: u64) -> u64 {
    ctrl & (ctrl << 1) & HI
}

#[inline]
fn set_ctrl(ctrl: &mut u64, s: usize, b: u8) {
    let shift = s * 8;
    *ctrl = (*ctrl & !(0xFF << shift)) | ((b as u64) << shift);
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
            assert!(t.index.items == t.len());
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
