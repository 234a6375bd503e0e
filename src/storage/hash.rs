//! Hash values (`HSET` and friends) in Redis's two encodings.
//!
//! - [`Hash::Packed`] ("listpack"): small hashes live in one contiguous buffer of
//!   length-prefixed field/value pairs, searched linearly, in insertion order (an update
//!   rewrites the value in place, a new field is appended, a deletion closes the gap), so
//!   HGETALL, HKEYS, HVALS and HSCAN list the fields in the same order as Redis.
//! - [`Hash::Table`] ("hashtable"): the pairs in one vector of 32-byte entries (field and
//!   value as [`CompactBytes`], inline up to 15 bytes) and a hash index of 32-bit
//!   positions into it, like the set table (docs/memory-collections.md).
//!
//! A hash starts packed and becomes a table when it gets more than
//! `hash-max-listpack-entries` fields or a field or value longer than
//! `hash-max-listpack-value` bytes (see [`Limits`]). Like Redis, it never goes back.

use super::chunked::{self, ChunkVec};
use super::compact::CompactBytes;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::ops::Range;

/// Redis's `LISTPACK_MAX_SAFETY_SIZE`: a packed hash never grows past 1 GiB.
const PACKED_MAX_BYTES: usize = 1 << 30;

/// HSCAN of a table returns at least `len / SCAN_SLICES` pairs per call.
pub const SCAN_SLICES: usize = 64;

/// Most pairs a table holds (positions are 32-bit).
pub const TABLE_MAX: usize = u32::MAX as usize;

/// The conversion thresholds (`hash-max-listpack-entries`, `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most fields a packed hash holds.
    pub max_entries: usize,
    /// Longest field or value (bytes) a packed hash holds.
    pub max_value: usize,
}

impl Default for Limits {
    /// Redis 7.0.15's defaults: 512 entries, 64 bytes.
    fn default() -> Self {
        Limits {
            max_entries: 512,
            max_value: 64,
        }
    }
}

/// A hash value: 16 bytes (a packed buffer, or a pointer to a table).
#[derive(Clone)]
pub enum Hash {
    /// The compact encoding (`OBJECT ENCODING` "listpack").
    Packed(Packed),
    /// The hash table encoding (`OBJECT ENCODING` "hashtable").
    Table(Box<Table>),
}

/// Field/value pairs in one exact-size heap block: a 4-byte pair count (little-endian),
/// then for each pair the field's length (LEB128), the field, the value's length
/// (LEB128), the value. An empty hash has no block at all. Every change reallocates the
/// block to its new exact size (in place when the size class stays, as jemalloc does
/// for a listpack), so a small hash costs one allocation of its encoded size.
#[derive(Clone, Default)]
pub struct Packed {
    buf: Box<[u8]>,
}

/// Bytes of the pair count at the start of a non-empty packed buffer.
const HEADER: usize = 4;

/// Appends `n` as LEB128.
#[inline]
fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Bytes of the LEB128 encoding of `n`.
#[inline]
fn len_size(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

/// Reads a LEB128 length at `pos`; returns it and the position after it.
#[inline]
fn read_len(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[pos];
        pos += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            return (n, pos);
        }
        shift += 7;
    }
}

/// Where one pair sits in a packed buffer.
struct Slot {
    /// Start of the pair (the field's length prefix).
    start: usize,
    /// The field's bytes.
    field: Range<usize>,
    /// Start of the value's length prefix.
    val_start: usize,
    /// The value's bytes (its end is the end of the pair).
    value: Range<usize>,
}

impl Packed {
    /// Number of pairs.
    #[inline]
    fn len(&self) -> usize {
        match self.buf.get(..HEADER) {
            Some(h) => u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize,
            None => 0,
        }
    }

    /// Sets the pair count (the buffer has its header).
    #[inline]
    fn set_len(&mut self, n: usize) {
        self.buf[..HEADER].copy_from_slice(&(n as u32).to_le_bytes());
    }

    /// Bytes of the buffer.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The pair starting at `pos`.
    #[inline]
    fn slot_at(&self, pos: usize) -> Slot {
        let (flen, p) = read_len(&self.buf, pos);
        let field = p..p + flen;
        let val_start = field.end;
        let (vlen, q) = read_len(&self.buf, val_start);
        Slot {
            start: pos,
            field,
            val_start,
            value: q..q + vlen,
        }
    }

    /// The pair holding `field`.
    fn find(&self, field: &[u8]) -> Option<Slot> {
        let mut pos = HEADER;
        while pos < self.buf.len() {
            let s = self.slot_at(pos);
            if &self.buf[s.field.clone()] == field {
                return Some(s);
            }
            pos = s.value.end;
        }
        None
    }

    /// Makes `range` of the buffer `new_len` bytes long (moving what follows it), with
    /// one reallocation to the new exact size; returns the new range. The bytes of the
    /// new range are unspecified.
    fn resize_range(&mut self, range: Range<usize>, new_len: usize) -> Range<usize> {
        let old_len = range.len();
        let mut v = std::mem::take(&mut self.buf).into_vec();
        let total = v.len();
        if new_len > old_len {
            v.reserve_exact(new_len - old_len);
            v.resize(total + new_len - old_len, 0);
            v.copy_within(range.end..total, range.start + new_len);
        } else if new_len < old_len {
            v.copy_within(range.end..total, range.start + new_len);
            v.truncate(total - (old_len - new_len));
        }
        self.buf = v.into_boxed_slice();
        range.start..range.start + new_len
    }

    /// Appends a new pair.
    fn push(&mut self, field: &[u8], value: &[u8]) {
        let n = self.len();
        let mut v = std::mem::take(&mut self.buf).into_vec();
        let add = len_size(field.len()) + field.len() + len_size(value.len()) + value.len();
        if v.is_empty() {
            v.reserve_exact(HEADER + add);
            v.extend_from_slice(&[0; HEADER]);
        } else {
            v.reserve_exact(add);
        }
        put_len(&mut v, field.len());
        v.extend_from_slice(field);
        put_len(&mut v, value.len());
        v.extend_from_slice(value);
        self.buf = v.into_boxed_slice();
        self.set_len(n + 1);
    }

    /// Replaces the value of the pair at `s`, keeping its place.
    fn replace_value(&mut self, s: &Slot, value: &[u8]) {
        if s.value.len() == value.len() {
            self.buf[s.value.clone()].copy_from_slice(value);
            return;
        }
        let mut enc = Vec::with_capacity(10);
        put_len(&mut enc, value.len());
        let r = self.resize_range(s.val_start..s.value.end, enc.len() + value.len());
        self.buf[r.start..r.start + enc.len()].copy_from_slice(&enc);
        self.buf[r.start + enc.len()..r.end].copy_from_slice(value);
    }

    /// Removes the pair at `s`.
    fn remove_slot(&mut self, s: &Slot) {
        let n = self.len();
        self.resize_range(s.start..s.value.end, 0);
        self.set_len(n - 1);
    }
}

/// The table encoding: the pairs in one chunked vector of 32-byte entries (a field and a value
/// as [`CompactBytes`]: up to 15 bytes inline, longer ones in one exact heap block) and
/// a hash index of their 32-bit positions. A removal moves the last pair into the hole.
/// About 32 bytes a pair for the vector plus 5 to 11 for the index, and nothing else
/// when fields and values are short.
#[derive(Clone)]
pub struct Table {
    entries: ChunkVec<(CompactBytes, CompactBytes)>,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Table {
    fn default() -> Self {
        Table::with_capacity(0)
    }
}

impl Table {
    /// An empty table with room for `n` pairs.
    pub fn with_capacity(n: usize) -> Table {
        Table {
            entries: ChunkVec::with_capacity(n),
            index: HashTable::with_capacity(n),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Number of pairs.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The hash of a field (the index's and HSCAN's).
    #[inline]
    fn hash(&self, f: &[u8]) -> u64 {
        self.hasher.hash_one(f)
    }

    /// Position of `f` in the entries.
    #[inline]
    fn find(&self, f: &[u8]) -> Option<usize> {
        let h = self.hash(f);
        let entries = &self.entries;
        self.index
            .find(h, |&i| &*entries[i as usize].0 == f)
            .map(|&i| i as usize)
    }

    /// The value of `f`.
    #[inline]
    pub fn get(&self, f: &[u8]) -> Option<&[u8]> {
        self.find(f).map(|i| &*self.entries[i].1)
    }

    /// Sets `f` to `v`; returns true when the field is new.
    pub fn insert(&mut self, f: &[u8], v: &[u8]) -> bool {
        let h = self.hash(f);
        let Table {
            entries,
            index,
            hasher,
        } = self;
        if let Some(&i) = index.find(h, |&i| &*entries[i as usize].0 == f) {
            let slot = &mut entries[i as usize].1;
            if slot.len() == v.len() {
                slot.as_bytes_mut().copy_from_slice(v);
            } else {
                *slot = CompactBytes::new(v);
            }
            return false;
        }
        assert!(entries.len() < TABLE_MAX, "hash too large");
        let pos = entries.len() as u32;
        entries.push((CompactBytes::new(f), CompactBytes::new(v)));
        index.insert_unique(h, pos, |&i| hasher.hash_one(&*entries[i as usize].0));
        true
    }

    /// Removes `f`; returns true when it existed.
    pub fn remove(&mut self, f: &[u8]) -> bool {
        let Some(pos) = self.find(f) else {
            return false;
        };
        let h = self.hash(f);
        if let Ok(e) = self.index.find_entry(h, |&i| i as usize == pos) {
            e.remove();
        }
        let last = self.entries.len() - 1;
        if pos != last {
            let hl = self.hash(&self.entries[last].0);
            if let Some(slot) = self.index.find_mut(hl, |&i| i as usize == last) {
                *slot = pos as u32;
            }
        }
        self.entries.swap_remove(pos);
        // Give memory back when the table is mostly empty (Redis's htNeedsResize).
        if self.entries.capacity() > 16 && self.entries.len() * 8 < self.entries.capacity() {
            self.entries.shrink_to_fit();
            let Table {
                entries,
                index,
                hasher,
            } = self;
            index.shrink_to_fit(|&i| hasher.hash_one(&*entries[i as usize].0));
        }
        true
    }

    /// The pair at position `i` (0..len, an arbitrary but fixed order between changes).
    #[inline]
    pub fn pair_at(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries.get(i).map(|(f, v)| (&**f, &**v))
    }

    /// Bytes used on the heap (vector, index, long fields and values).
    pub fn heap_size(&self) -> usize {
        self.entries.heap_bytes()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self
                .entries
                .iter()
                .map(|(f, v)| f.heap_size() + v.heap_size())
                .sum::<usize>()
    }
}

/// Iterator over a hash's (field, value) pairs: insertion order when packed, table
/// order otherwise.
pub struct Iter<'a> {
    inner: IterInner<'a>,
}

enum IterInner<'a> {
    Packed { buf: &'a [u8], pos: usize },
    Table(chunked::Iter<'a, (CompactBytes, CompactBytes)>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterInner::Packed { buf, pos } => {
                let &mut buf = buf;
                if *pos >= buf.len() {
                    return None;
                }
                let (flen, p) = read_len(buf, *pos);
                let field = &buf[p..p + flen];
                let (vlen, q) = read_len(buf, p + flen);
                let value = &buf[q..q + vlen];
                *pos = q + vlen;
                Some((field, value))
            }
            IterInner::Table(it) => it.next().map(|(k, v)| (&**k, &**v)),
        }
    }
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Hash {
    /// An empty (packed) hash.
    pub fn new() -> Hash {
        Hash::Packed(Packed::default())
    }

    /// Number of fields.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Hash::Packed(p) => p.len(),
            Hash::Table(t) => t.len(),
        }
    }

    /// True when the hash has no field.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Packed(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// The value of `field`.
    #[inline]
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Packed(p) => p.find(field).map(|s| &p.buf[s.value]),
            Hash::Table(t) => t.get(field),
        }
    }

    /// True when `field` exists.
    #[inline]
    pub fn contains(&self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(p) => p.find(field).is_some(),
            Hash::Table(t) => t.find(field).is_some(),
        }
    }

    /// The (field, value) pairs.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: match self {
                Hash::Packed(p) => IterInner::Packed {
                    buf: &p.buf,
                    pos: HEADER,
                },
                Hash::Table(t) => IterInner::Table(t.entries.iter()),
            },
        }
    }

    /// The pair at position `i` of [`Hash::iter`]'s order: O(1) for a table, a walk of
    /// the buffer when packed (HRANDFIELD's pick).
    pub fn pair_at(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Packed(_) => self.iter().nth(i),
            Hash::Table(t) => t.pair_at(i),
        }
    }

    /// Converts a packed hash to the table encoding (no-op for a table).
    pub fn convert_to_table(&mut self) {
        if let Hash::Packed(p) = self {
            let mut t = Table::with_capacity(p.len());
            for (f, v) in (Iter {
                inner: IterInner::Packed {
                    buf: &p.buf,
                    pos: HEADER,
                },
            }) {
                t.insert(f, v);
            }
            *self = Hash::Table(Box::new(t));
        }
    }

    /// Redis's `hashTypeTryConversion`: before a write of `items` (fields and values),
    /// converts a packed hash when one of them is longer than `max_value`, or when the
    /// buffer would grow past 1 GiB.
    pub fn try_conversion<'a>(&mut self, items: impl IntoIterator<Item = &'a [u8]>, lim: Limits) {
        let Hash::Packed(p) = self else {
            return;
        };
        let packed_bytes = p.buf.len();
        let mut sum = 0usize;
        for s in items {
            if s.len() > lim.max_value {
                self.convert_to_table();
                return;
            }
            sum = sum.saturating_add(s.len());
        }
        if packed_bytes.saturating_add(sum) > PACKED_MAX_BYTES {
            self.convert_to_table();
        }
    }

    /// Redis's `hashTypeSet`: sets `field` to `value`. Returns true when the field is new.
    /// A packed hash is converted first when the field or value is longer than
    /// `max_value`, and afterwards when it holds more than `max_entries` fields.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: Limits) -> bool {
        if matches!(self, Hash::Packed(_))
            && (field.len() > lim.max_value || value.len() > lim.max_value)
        {
            self.convert_to_table();
        }
        match self {
            Hash::Packed(p) => {
                let new = match p.find(field) {
                    Some(s) => {
                        p.replace_value(&s, value);
                        false
                    }
                    None => {
                        p.push(field, value);
                        true
                    }
                };
                let too_many = p.len() > lim.max_entries;
                if too_many {
                    self.convert_to_table();
                }
                new
            }
            Hash::Table(t) => t.insert(field, value),
        }
    }

    /// Removes `field`; returns true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(p) => match p.find(field) {
                Some(s) => {
                    p.remove_slot(&s);
                    true
                }
                None => false,
            },
            Hash::Table(t) => t.remove(field),
        }
    }

    /// One step of an HSCAN from `cursor`, calling `f` with the pairs returned; returns
    /// the next cursor (0 when the scan is complete).
    ///
    /// A packed hash returns every pair at once with cursor 0, as Redis does for a
    /// listpack. A table is walked in the order of the fields' (63-bit) hashes: a call
    /// returns the pairs whose hash is at least `cursor`, about `count` of them and always
    /// every pair sharing the last hash returned, and the next cursor is that hash plus one.
    /// So a field present for the whole scan is returned exactly once, whatever inserts,
    /// deletes and table resizes happen between calls. Each call costs O(len), so a call
    /// returns at least 1/[`SCAN_SLICES`] of the table (COUNT is only a hint, as in
    /// Redis): a whole scan costs O(len) times at most that many calls.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) -> u64 {
        let t = match self {
            Hash::Packed(_) => {
                for (k, v) in self.iter() {
                    f(k, v);
                }
                return 0;
            }
            Hash::Table(t) => t,
        };
        let mut rest: Vec<(u64, &'a [u8], &'a [u8])> = t
            .entries
            .iter()
            .map(|(k, v)| (t.hash(k) >> 1, &**k, &**v))
            .filter(|(h, _, _)| *h >= cursor)
            .collect();
        let count = count.max(1).max(t.len() / SCAN_SLICES);
        if rest.len() <= count {
            for (_, k, v) in rest {
                f(k, v);
            }
            return 0;
        }
        rest.select_nth_unstable_by_key(count - 1, |e| e.0);
        let last = rest[count - 1].0;
        let mut more = false;
        for &(h, k, v) in &rest {
            if h <= last {
                f(k, v);
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
            Hash::Packed(p) => p.buf.len(),
            Hash::Table(t) => std::mem::size_of::<Table>() + t.heap_size(),
        }
    }
}

impl PartialEq for Hash {
    /// Same fields with the same values (the encodings may differ).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash<{}>", self.encoding())?;
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(entries: usize, value: usize) -> Limits {
        Limits {
            max_entries: entries,
            max_value: value,
        }
    }

    #[test]
    fn packed_keeps_insertion_order() {
        let mut h = Hash::new();
        let l = Limits::default();
        assert!(h.set(b"a", b"1", l));
        assert!(h.set(b"b", b"2", l));
        assert!(h.set(b"c", b"3", l));
        assert!(!h.set(b"a", b"longer value", l));
        assert!(!h.set(b"b", b"x", l));
        assert_eq!(h.get(b"a"), Some(&b"longer value"[..]));
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert!(h.set(b"b", b"", l));
        let pairs: Vec<_> = h.iter().collect();
        assert_eq!(
            pairs,
            vec![
                (&b"a"[..], &b"longer value"[..]),
                (&b"c"[..], &b"3"[..]),
                (&b"b"[..], &b""[..])
            ]
        );
        assert_eq!(h.len(), 3);
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn long_lengths_round_trip() {
        let mut h = Hash::new();
        let l = lim(10, 100_000);
        let big = vec![7u8; 20_000];
        h.set(b"f", &big, l);
        h.set(&big, b"v", l);
        assert_eq!(h.get(b"f"), Some(&big[..]));
        assert_eq!(h.get(&big), Some(&b"v"[..]));
        h.set(b"f", b"small", l);
        assert_eq!(h.get(b"f"), Some(&b"small"[..]));
        assert_eq!(h.get(&big), Some(&b"v"[..]));
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn converts_on_count_and_length() {
        let mut h = Hash::new();
        let l = lim(3, 4);
        for f in [&b"a"[..], b"b", b"c"] {
            h.set(f, b"v", l);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"d", b"v", l);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 4);
        let mut g = Hash::new();
        g.set(b"a", b"12345", l);
        assert_eq!(g.encoding(), "hashtable");
        let mut k = Hash::new();
        k.try_conversion([&b"a"[..], b"12345"], l);
        assert_eq!(k.encoding(), "hashtable");
        assert!(k.is_empty());
    }

    #[test]
    fn table_scan_visits_everything_once() {
        let mut h = Hash::new();
        let l = lim(0, 64);
        for i in 0..1000 {
            h.set(format!("f{i}").as_bytes(), b"v", l);
        }
        assert_eq!(h.encoding(), "hashtable");
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            cursor = h.scan(cursor, 10, |k, _| *seen.entry(k.to_vec()).or_insert(0) += 1);
            calls += 1;
            if cursor == 0 {
                break;
            }
            assert!(cursor <= i64::MAX as u64);
        }
        assert_eq!(seen.len(), 1000);
        assert!(seen.values().all(|&n| n == 1));
        // 1000 / 64 = 15 pairs per call at least.
        assert!((50..=80).contains(&calls), "{calls} calls");
    }

    #[test]
    fn packed_scan_returns_all() {
        let mut h = Hash::new();
        h.set(b"a", b"1", Limits::default());
        h.set(b"b", b"2", Limits::default());
        let mut n = 0;
        assert_eq!(h.scan(12345, 1, |_, _| n += 1), 0);
        assert_eq!(n, 2);
    }

    #[test]
    fn hash_is_sixteen_bytes_and_packed_is_exact() {
        assert_eq!(std::mem::size_of::<Hash>(), 16);
        let mut h = Hash::new();
        assert_eq!(h.heap_size(), 0);
        h.set(b"name", b"user1", Limits::default());
        // 4-byte count, then 1 + 4 + 1 + 5 bytes.
        assert_eq!(h.heap_size(), 15);
        h.set(b"name", b"u", Limits::default());
        assert_eq!(h.heap_size(), 11);
        h.remove(b"name");
        assert_eq!(h.heap_size(), 4);
        assert!(h.is_empty());
    }

    #[test]
    fn random_ops_match_a_model_in_both_encodings() {
        use rand::{Rng, SeedableRng};
        for entries in [0usize, 8, 512] {
            let l = lim(entries, 20);
            let mut rng = rand::rngs::SmallRng::seed_from_u64(entries as u64);
            let mut h = Hash::new();
            let mut m = std::collections::HashMap::<Vec<u8>, Vec<u8>>::new();
            for step in 0..4000 {
                let f = format!("f{}", rng.gen_range(0..300)).into_bytes();
                match rng.gen_range(0..4) {
                    0 | 1 => {
                        let len = if rng.gen_bool(0.1) {
                            30
                        } else {
                            rng.gen_range(0..18)
                        };
                        let v = vec![b'a' + rng.gen_range(0..26u8); len];
                        assert_eq!(h.set(&f, &v, l), m.insert(f, v).is_none());
                    }
                    2 => assert_eq!(h.remove(&f), m.remove(&f).is_some()),
                    _ => assert_eq!(h.get(&f), m.get(&f).map(|v| &v[..])),
                }
                assert_eq!(h.len(), m.len());
                if step % 200 == 0 {
                    let all: std::collections::HashMap<Vec<u8>, Vec<u8>> =
                        h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                    assert_eq!(all, m);
                    for i in 0..h.len() {
                        let (k, v) = h.pair_at(i).expect("pair");
                        assert_eq!(m.get(k).map(|x| &x[..]), Some(v));
                    }
                    assert!(h.pair_at(h.len()).is_none());
                }
            }
        }
    }

    #[test]
    fn equality_ignores_encoding() {
        let mut a = Hash::new();
        let mut b = Hash::new();
        a.set(b"x", b"1", Limits::default());
        b.set(b"x", b"1", lim(0, 64));
        assert_ne!(a.encoding(), b.encoding());
        assert_eq!(a, b);
    }
}
