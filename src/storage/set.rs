//! Set values (`SADD` and friends) in Redis 7.0's two encodings.
//!
//! - [`Set::Ints`] ("intset"): a set whose members are all canonical decimal integers
//!   (as Redis's `string2ll` accepts them) is a sorted array of packed integers of the
//!   smallest width that holds every member (16, 32 or 64 bits, widened when a larger
//!   member arrives, never narrowed), searched by binary search. SMEMBERS of an intset
//!   lists the members in ascending order, as Redis does.
//! - [`Set::Table`] ("hashtable"): the members in one chunked vector of [`CompactBytes`]
//!   (16 bytes each, members up to 15 bytes inline, longer ones in one exact heap block)
//!   plus a hash index of 32-bit positions into it. The vector gives O(1) random members (SPOP,
//!   SRANDMEMBER) and the index O(1) membership.
//!
//! A set created by a first member that is an integer starts as an intset; it becomes a
//! table when a non-integer member is added or when it holds more than
//! `set-max-intset-entries` members. Like Redis, it never goes back.

use super::chunked::{self, ChunkVec};
use super::compact::CompactBytes;
use crate::protocol::reply::parse_i64;
use crate::protocol::reply::ReplyWriter;
use hashbrown::HashTable;
use rand::Rng;
use std::hash::BuildHasher;

/// SSCAN of a table returns at least `len / SCAN_SLICES` members per call.
pub const SCAN_SLICES: usize = 64;

/// Redis caps `set-max-intset-entries` at 2^30 (intset internals).
const INTSET_HARD_MAX: usize = 1 << 30;

/// Most members a table holds (positions are 32-bit).
pub const TABLE_MAX: usize = u32::MAX as usize;

/// A set value.
#[derive(Clone)]
pub enum Set {
    /// Sorted packed integers (`OBJECT ENCODING` "intset").
    Ints(IntSet),
    /// Hash table of byte strings (`OBJECT ENCODING` "hashtable"). Boxed so that a small
    /// intset costs one 32-byte block besides its array.
    Table(Box<Table>),
}

/// A sorted array of distinct integers, all stored with the width of the widest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntSet {
    /// Every member fits in 16 bits.
    W16(Vec<i16>),
    /// Every member fits in 32 bits.
    W32(Vec<i32>),
    /// 64-bit members.
    W64(Vec<i64>),
}

/// One member as a set hands it out: an intset member is an integer (formatted only when
/// needed), a table member a byte string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    /// An intset member.
    Int(i64),
    /// A table member.
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// Calls `f` with the member's bytes (integers are formatted on the stack).
    #[inline]
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(v) => f(itoa::Buffer::new().format(*v).as_bytes()),
            Member::Bytes(b) => f(b),
        }
    }

    /// The member's bytes, owned.
    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// Writes the member as a bulk string.
    #[inline]
    pub fn reply(&self, out: &mut ReplyWriter) {
        match self {
            Member::Int(v) => out.bulk_int(*v),
            Member::Bytes(b) => out.bulk(b),
        }
    }
}

macro_rules! each_width {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            IntSet::W16($v) => $body,
            IntSet::W32($v) => $body,
            IntSet::W64($v) => $body,
        }
    };
}

impl IntSet {
    /// An empty intset (16-bit).
    pub fn new() -> IntSet {
        IntSet::W16(Vec::new())
    }

    /// Number of members.
    #[inline]
    pub fn len(&self) -> usize {
        each_width!(self, v => v.len())
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The member at position `i` (ascending order).
    #[inline]
    #[allow(clippy::unnecessary_cast)] // the 64-bit arm of the macro
    pub fn get(&self, i: usize) -> i64 {
        each_width!(self, v => v[i] as i64)
    }

    /// Position of `x`, or where it would go.
    #[inline]
    fn search(&self, x: i64) -> Result<usize, usize> {
        match self {
            IntSet::W16(v) => match i16::try_from(x) {
                Ok(x) => v.binary_search(&x),
                Err(_) => Err(if x < 0 { 0 } else { v.len() }),
            },
            IntSet::W32(v) => match i32::try_from(x) {
                Ok(x) => v.binary_search(&x),
                Err(_) => Err(if x < 0 { 0 } else { v.len() }),
            },
            IntSet::W64(v) => v.binary_search(&x),
        }
    }

    /// True when `x` is a member.
    #[inline]
    pub fn contains(&self, x: i64) -> bool {
        self.search(x).is_ok()
    }

    /// Widens the array so that it can hold `x`.
    fn widen_for(&mut self, x: i64) {
        let need = if i16::try_from(x).is_ok() {
            0
        } else if i32::try_from(x).is_ok() {
            1
        } else {
            2
        };
        let have = match self {
            IntSet::W16(_) => 0,
            IntSet::W32(_) => 1,
            IntSet::W64(_) => 2,
        };
        if need <= have {
            return;
        }
        *self = match (need, &*self) {
            (1, IntSet::W16(v)) => {
                let mut w = Vec::with_capacity(v.len() + 1);
                w.extend(v.iter().map(|&x| x as i32));
                IntSet::W32(w)
            }
            _ => {
                let mut w = Vec::with_capacity(self.len() + 1);
                w.extend(self.iter());
                IntSet::W64(w)
            }
        };
    }

    /// Adds `x`; returns true when it was not a member. Grows the array by exactly one
    /// slot, as Redis's `intsetAdd` reallocates.
    pub fn insert(&mut self, x: i64) -> bool {
        self.widen_for(x);
        let Err(pos) = self.search(x) else {
            return false;
        };
        match self {
            IntSet::W16(v) => {
                v.reserve_exact(1);
                v.insert(pos, x as i16)
            }
            IntSet::W32(v) => {
                v.reserve_exact(1);
                v.insert(pos, x as i32)
            }
            IntSet::W64(v) => {
                v.reserve_exact(1);
                v.insert(pos, x)
            }
        }
        true
    }

    /// Removes `x`; returns true when it was a member.
    pub fn remove(&mut self, x: i64) -> bool {
        match self.search(x) {
            Ok(pos) => {
                self.remove_at(pos);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes the member at position `i` and returns it; gives memory back when the array
    /// is mostly empty.
    #[allow(clippy::unnecessary_cast)] // the 64-bit arm of the macro
    pub fn remove_at(&mut self, i: usize) -> i64 {
        each_width!(self, v => {
            let x = v.remove(i) as i64;
            if v.capacity() > 8 && v.len() * 2 < v.capacity() {
                v.shrink_to_fit();
            }
            x
        })
    }

    /// The members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Bytes used on the heap.
    pub fn heap_size(&self) -> usize {
        match self {
            IntSet::W16(v) => v.capacity() * 2,
            IntSet::W32(v) => v.capacity() * 4,
            IntSet::W64(v) => v.capacity() * 8,
        }
    }
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::new()
    }
}

/// The table encoding: members in a vector (insertion order, disturbed by removals, which
/// move the last member into the hole) and a hash index of their positions.
#[derive(Clone)]
pub struct Table {
    members: ChunkVec<CompactBytes>,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Table {
    fn default() -> Self {
        Table::with_capacity(0)
    }
}

impl Table {
    /// An empty table with room for `n` members.
    pub fn with_capacity(n: usize) -> Table {
        Table {
            members: ChunkVec::with_capacity(n),
            index: HashTable::with_capacity(n),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Number of members.
    #[inline]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    #[inline]
    fn hash(&self, m: &[u8]) -> u64 {
        self.hasher.hash_one(m)
    }

    /// Position of `m` in the member vector.
    #[inline]
    fn find(&self, m: &[u8]) -> Option<usize> {
        let h = self.hash(m);
        let members = &self.members;
        self.index
            .find(h, |&i| &*members[i as usize] == m)
            .map(|&i| i as usize)
    }

    /// True when `m` is a member.
    #[inline]
    pub fn contains(&self, m: &[u8]) -> bool {
        self.find(m).is_some()
    }

    /// Adds `m`; returns true when it was not a member.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        let h = self.hash(m);
        let Table {
            members,
            index,
            hasher,
        } = self;
        if index.find(h, |&i| &*members[i as usize] == m).is_some() {
            return false;
        }
        assert!(members.len() < TABLE_MAX, "set too large");
        let pos = members.len() as u32;
        members.push(CompactBytes::new(m));
        index.insert_unique(h, pos, |&i| hasher.hash_one(&*members[i as usize]));
        true
    }

    /// Removes the member at position `pos`; returns it.
    fn remove_at(&mut self, pos: usize) -> CompactBytes {
        let h = self.hash(&self.members[pos]);
        if let Ok(e) = self.index.find_entry(h, |&i| i as usize == pos) {
            e.remove();
        }
        let last = self.members.len() - 1;
        if pos != last {
            let hl = self.hash(&self.members[last]);
            if let Some(slot) = self.index.find_mut(hl, |&i| i as usize == last) {
                *slot = pos as u32;
            }
        }
        let m = self.members.swap_remove(pos);
        // Give memory back when the table is mostly empty (Redis's htNeedsResize).
        if self.members.capacity() > 16 && self.members.len() * 8 < self.members.capacity() {
            self.members.shrink_to_fit();
            let Table {
                members,
                index,
                hasher,
            } = self;
            index.shrink_to_fit(|&i| hasher.hash_one(&*members[i as usize]));
        }
        m
    }

    /// Removes `m`; returns true when it was a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.find(m) {
            Some(pos) => {
                self.remove_at(pos);
                true
            }
            None => false,
        }
    }

    /// The members.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.members.iter().map(|m| &**m)
    }

    /// Bytes used on the heap (vector, index, member blocks).
    pub fn heap_size(&self) -> usize {
        self.members.heap_bytes()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.members.iter().map(|m| m.heap_size()).sum::<usize>()
    }
}

/// Iterator over a set's members: ascending for an intset, vector order for a table.
pub enum Iter<'a> {
    /// Over an intset.
    Ints(&'a IntSet, usize),
    /// Over a table.
    Table(chunked::Iter<'a, CompactBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    #[inline]
    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            Iter::Ints(s, i) => {
                if *i >= s.len() {
                    return None;
                }
                let x = s.get(*i);
                *i += 1;
                Some(Member::Int(x))
            }
            Iter::Table(it) => it.next().map(|m| Member::Bytes(m)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Ints(s, i) => s.len() - *i,
            Iter::Table(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl Default for Set {
    fn default() -> Self {
        Set::new_ints()
    }
}

impl Set {
    /// An empty intset (Redis's `createIntsetObject`: how set-operation results start).
    pub fn new_ints() -> Set {
        Set::Ints(IntSet::new())
    }

    /// An empty set that can hold `first` (Redis's `setTypeCreate`): an intset when it is
    /// an integer, a table otherwise.
    pub fn new_for(first: &[u8]) -> Set {
        if parse_i64(first).is_some() {
            Set::new_ints()
        } else {
            Set::Table(Box::default())
        }
    }

    /// Number of members.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Set::Ints(s) => s.len(),
            Set::Table(t) => t.len(),
        }
    }

    /// True when the set has no member.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    /// True when `m` is a member.
    #[inline]
    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_i64(m).is_some_and(|x| s.contains(x)),
            Set::Table(t) => t.contains(m),
        }
    }

    /// True when `m` (taken from another set) is a member.
    #[inline]
    pub fn contains_member(&self, m: Member) -> bool {
        match (self, m) {
            (Set::Ints(s), Member::Int(x)) => s.contains(x),
            (_, m) => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// The members: ascending for an intset.
    pub fn iter(&self) -> Iter<'_> {
        match self {
            Set::Ints(s) => Iter::Ints(s, 0),
            Set::Table(t) => Iter::Table(t.members.iter()),
        }
    }

    /// Converts an intset to a table sized for its members (no-op for a table).
    pub fn convert_to_table(&mut self) {
        if let Set::Ints(s) = self {
            let mut t = Table::with_capacity(s.len() + 1);
            let mut buf = itoa::Buffer::new();
            for x in s.iter() {
                t.insert(buf.format(x).as_bytes());
            }
            *self = Set::Table(Box::new(t));
        }
    }

    /// Redis's `setTypeAdd`: adds `m`; returns true when it was not a member. An intset
    /// becomes a table when `m` is not an integer, or when it gets more than
    /// `max_intset` members.
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        match self {
            Set::Table(t) => t.insert(m),
            Set::Ints(s) => match parse_i64(m) {
                Some(x) => {
                    if !s.insert(x) {
                        return false;
                    }
                    if s.len() > max_intset.min(INTSET_HARD_MAX) {
                        self.convert_to_table();
                    }
                    true
                }
                None => {
                    self.convert_to_table();
                    if let Set::Table(t) = self {
                        t.insert(m);
                    }
                    true
                }
            },
        }
    }

    /// Adds a member taken from another set (integers are not formatted when both are
    /// intsets).
    pub fn add_member(&mut self, m: Member, max_intset: usize) -> bool {
        match (&mut *self, m) {
            (Set::Ints(s), Member::Int(x)) => {
                if !s.insert(x) {
                    return false;
                }
                if s.len() > max_intset.min(INTSET_HARD_MAX) {
                    self.convert_to_table();
                }
                true
            }
            (_, m) => m.with_bytes(|b| self.add(b, max_intset)),
        }
    }

    /// Removes `m`; returns true when it was a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_i64(m).is_some_and(|x| s.remove(x)),
            Set::Table(t) => t.remove(m),
        }
    }

    /// Removes a member taken from another set.
    pub fn remove_member(&mut self, m: Member) -> bool {
        match (&mut *self, m) {
            (Set::Ints(s), Member::Int(x)) => s.remove(x),
            (_, m) => m.with_bytes(|b| self.remove(b)),
        }
    }

    /// A uniformly random member (the set must not be empty).
    #[inline]
    pub fn random(&self, rng: &mut impl Rng) -> Member<'_> {
        let i = rng.gen_range(0..self.len());
        match self {
            Set::Ints(s) => Member::Int(s.get(i)),
            Set::Table(t) => Member::Bytes(&t.members[i]),
        }
    }

    /// Removes a uniformly random member and returns it (the set must not be empty).
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Popped {
        let i = rng.gen_range(0..self.len());
        match self {
            Set::Ints(s) => Popped::Int(s.remove_at(i)),
            Set::Table(t) => Popped::Bytes(t.remove_at(i)),
        }
    }

    /// One step of an SSCAN from `cursor`, calling `f` with the members returned; returns
    /// the next cursor (0 when the scan is complete).
    ///
    /// An intset returns every member at once with cursor 0, as Redis does. A table is
    /// walked in the order of the members' (63-bit) hashes: a call returns the members
    /// whose hash is at least `cursor`, about `count` of them and always every member
    /// sharing the last hash returned, and the next cursor is that hash plus one. So a
    /// member present for the whole scan is returned exactly once, whatever adds, removals
    /// and resizes happen between calls. Each call costs O(len), so a call returns at
    /// least 1/[`SCAN_SLICES`] of the table (COUNT is a hint, as in Redis).
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(Member<'a>)) -> u64 {
        let t = match self {
            Set::Ints(_) => {
                self.iter().for_each(f);
                return 0;
            }
            Set::Table(t) => t,
        };
        let mut rest: Vec<(u64, &'a [u8])> = t
            .iter()
            .map(|m| (t.hash(m) >> 1, m))
            .filter(|(h, _)| *h >= cursor)
            .collect();
        let count = count.max(1).max(t.len() / SCAN_SLICES);
        if rest.len() <= count {
            rest.into_iter().for_each(|(_, m)| f(Member::Bytes(m)));
            return 0;
        }
        rest.select_nth_unstable_by_key(count - 1, |e| e.0);
        let last = rest[count - 1].0;
        let mut more = false;
        for &(h, m) in &rest {
            if h <= last {
                f(Member::Bytes(m));
            } else {
                more = true;
            }
        }
        if more {
            last + 1
        } else {
            0
        }
    }

    /// Approximate heap bytes used (for MEMORY USAGE and accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Set::Ints(s) => s.heap_size(),
            Set::Table(t) => std::mem::size_of::<Table>() + t.heap_size(),
        }
    }
}

/// A member removed from a set.
pub enum Popped {
    /// From an intset.
    Int(i64),
    /// From a table.
    Bytes(CompactBytes),
}

impl Popped {
    /// The member as a [`Member`].
    pub fn as_member(&self) -> Member<'_> {
        match self {
            Popped::Int(x) => Member::Int(*x),
            Popped::Bytes(b) => Member::Bytes(b),
        }
    }
}

impl PartialEq for Set {
    /// Same members (the encodings may differ).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains_member(m))
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Set<{}>", self.encoding())?;
        f.debug_set()
            .entries(
                self.iter()
                    .map(|m| m.with_bytes(|b| String::from_utf8_lossy(b).into_owned())),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        s.iter().map(|m| m.to_vec()).collect()
    }

    #[test]
    fn intset_sorted_and_widens() {
        let mut s = Set::new_for(b"5");
        for m in ["5", "-3", "100", "5", "0"] {
            s.add(m.as_bytes(), 512);
        }
        assert_eq!(s.encoding(), "intset");
        assert!(matches!(s, Set::Ints(IntSet::W16(_))));
        assert_eq!(
            members(&s),
            vec![b"-3".to_vec(), b"0".into(), b"5".into(), b"100".into()]
        );
        assert!(s.add(b"70000", 512));
        assert!(matches!(s, Set::Ints(IntSet::W32(_))));
        assert!(s.add(b"-9223372036854775808", 512));
        assert!(matches!(s, Set::Ints(IntSet::W64(_))));
        assert_eq!(s.iter().next(), Some(Member::Int(i64::MIN)));
        assert!(s.contains(b"70000") && s.contains(b"-3") && !s.contains(b"7"));
        assert!(!s.contains(b"05") && !s.contains(b"+5"));
        assert!(s.remove(b"70000") && !s.remove(b"70000"));
        assert_eq!(s.len(), 5);
        // 16-bit search for values outside the width.
        let mut t = Set::new_ints();
        t.add(b"1", 512);
        assert!(!t.contains(b"100000") && !t.contains(b"-100000"));
    }

    #[test]
    fn converts_on_string_and_count() {
        let mut s = Set::new_ints();
        for i in 0..3 {
            s.add(i.to_string().as_bytes(), 3);
        }
        assert_eq!(s.encoding(), "intset");
        s.add(b"3", 3);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 4);
        let mut t = Set::new_ints();
        t.add(b"1", 512);
        t.add(b"x", 512);
        assert_eq!(t.encoding(), "hashtable");
        assert!(t.contains(b"1") && t.contains(b"x"));
        assert_eq!(Set::new_for(b"x").encoding(), "hashtable");
        assert_eq!(Set::new_for(b"-12").encoding(), "intset");
    }

    #[test]
    fn table_remove_keeps_index_consistent() {
        let mut s = Set::new_for(b"a");
        for i in 0..1000 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        for i in (0..1000).step_by(3) {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        for i in 0..1000 {
            assert_eq!(s.contains(format!("m{i}").as_bytes()), i % 3 != 0, "m{i}");
        }
        let mut rng = rand::thread_rng();
        let mut n = s.len();
        while n > 0 {
            let p = s.pop_random(&mut rng);
            assert!(!s.contains_member(p.as_member()));
            n -= 1;
            assert_eq!(s.len(), n);
        }
        assert!(!s.contains(b"m1"));
    }

    #[test]
    fn table_scan_visits_everything_once() {
        let mut s = Set::new_for(b"x");
        for i in 0..1000 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0;
        loop {
            cursor = s.scan(cursor, 10, |m| *seen.entry(m.to_vec()).or_insert(0) += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        assert!(seen.values().all(|&n| n == 1));
    }

    #[test]
    fn set_header_is_small() {
        assert!(std::mem::size_of::<Set>() <= 32);
    }

    #[test]
    fn equality_ignores_encoding() {
        let mut a = Set::new_ints();
        let mut b = Set::new_ints();
        a.add(b"1", 512);
        b.add(b"1", 0);
        assert_ne!(a.encoding(), b.encoding());
        assert_eq!(a, b);
    }
}
