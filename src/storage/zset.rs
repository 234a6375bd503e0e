//! Sorted set values (`ZADD` and friends) in Redis's two encodings.
//!
//! Elements are ordered by score, ties broken by the member's bytes (memcmp), exactly
//! as Redis orders them; `-0` and `0` compare equal (C `<` / `==` on doubles) but each
//! keeps its sign.
//!
//! - [`ZSet::Packed`] ("listpack"): small sets live in one contiguous buffer of
//!   entries in order: the member's length (LEB128), the member, then the score as a
//!   zigzag LEB128 code (`0` = an IEEE double follows in 8 bytes, `n > 0` = the
//!   integer score `unzigzag(n - 1)`, so a small integral score takes one byte).
//!   Lookups and rank/range searches are linear, like Redis's listpack.
//! - [`ZSet::Skip`] ("skiplist"): a skiplist with spans (O(log n) rank, insert, delete
//!   and range search) whose nodes live in an arena (`u32` links), plus a hash table of
//!   node indexes keyed by member for O(1) member -> score (the member bytes are stored
//!   once, in the node).
//!
//! A set starts packed and becomes a skiplist when an insert would make it hold more
//! than `zset-max-listpack-entries` elements or insert a member longer than
//! `zset-max-listpack-value` bytes (see [`Limits`]). Like Redis, it only goes back to
//! packed when a *STORE command builds a small result ([`ZSet::from_pairs`]).

use super::compact::CompactBytes;
use hashbrown::HashTable;
use std::cmp::Ordering;
use std::hash::BuildHasher;

/// Redis's `LISTPACK_MAX_SAFETY_SIZE`: a packed set never grows past 1 GiB.
const PACKED_MAX_BYTES: usize = 1 << 30;

/// ZSCAN of a skiplist returns at least `len / SCAN_SLICES` pairs per call.
pub const SCAN_SLICES: usize = 64;

/// The conversion thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most elements a packed set holds.
    pub max_entries: usize,
    /// Longest member (bytes) a packed set holds.
    pub max_value: usize,
}

impl Default for Limits {
    /// Redis 7.0.15's defaults: 128 entries, 64 bytes.
    fn default() -> Self {
        Limits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

/// Redis's element order: by score, then by member bytes.
#[inline]
pub fn cmp_elem(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    if s1 < s2 {
        Ordering::Less
    } else if s1 > s2 {
        Ordering::Greater
    } else {
        m1.cmp(m2)
    }
}

/// Formats a score as Redis's `d2string` does (how a listpack stores it, and so how
/// ZSCAN of a listpack set prints it): integral values that fit in ±2^62 in plain
/// decimal, otherwise `%.17g`; `inf`, `-inf`, `-0`.
pub fn d2string(v: f64, out: &mut Vec<u8>) {
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    let lim = (i64::MAX / 2) as f64;
    if v.is_finite() && (-lim..=lim).contains(&v) && v == (v as i64) as f64 {
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
        return;
    }
    crate::protocol::reply::format_double_g17(v, out);
}

// ---------------------------------------------------------------------------------------
// Packed encoding
// ---------------------------------------------------------------------------------------

/// Appends `n` as LEB128.
#[inline]
fn put_len(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Reads a LEB128 number at `pos`; returns it and the position after it.
#[inline]
fn read_len(buf: &[u8], mut pos: usize) -> (u64, usize) {
    let mut n = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[pos];
        pos += 1;
        n |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return (n, pos);
        }
        shift += 7;
    }
}

/// Largest magnitude stored as an integer code (exactly representable in f64).
const INT_CODE_MAX: f64 = (1u64 << 53) as f64;

/// Encodes one entry (member, score) onto `buf`.
fn encode_entry(buf: &mut Vec<u8>, member: &[u8], score: f64) {
    put_len(buf, member.len() as u64);
    buf.extend_from_slice(member);
    // Like a listpack, which stores d2string's "-0" as the integer 0, -0 becomes 0.
    let integral = score.is_finite() && score.abs() < INT_CODE_MAX && score == score.trunc();
    if integral {
        let n = score as i64;
        let zz = ((n << 1) ^ (n >> 63)) as u64;
        put_len(buf, zz + 1);
    } else {
        buf.push(0);
        buf.extend_from_slice(&score.to_le_bytes());
    }
}

/// One decoded packed entry.
#[derive(Clone, Copy)]
struct PEntry {
    /// Byte offset of the entry.
    start: usize,
    /// Member bytes range start.
    mstart: usize,
    /// Member bytes range end.
    mend: usize,
    /// The score.
    score: f64,
    /// Offset of the next entry.
    end: usize,
}

/// Member/score pairs in order, in one buffer (see the module docs for the layout).
#[derive(Clone, Default, Debug)]
pub struct Packed {
    buf: Vec<u8>,
    len: usize,
}

impl Packed {
    /// Decodes the entry at `pos`.
    #[inline]
    fn entry(&self, pos: usize) -> PEntry {
        let (mlen, p) = read_len(&self.buf, pos);
        let mend = p + mlen as usize;
        let (code, q) = read_len(&self.buf, mend);
        let (score, end) = if code == 0 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.buf[q..q + 8]);
            (f64::from_le_bytes(b), q + 8)
        } else {
            let zz = code - 1;
            let n = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
            (n as f64, q)
        };
        PEntry {
            start: pos,
            mstart: p,
            mend,
            score,
            end,
        }
    }

    /// The entries in order.
    fn entries(&self) -> impl Iterator<Item = PEntry> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.buf.len() {
                return None;
            }
            let e = self.entry(pos);
            pos = e.end;
            Some(e)
        })
    }

    fn member(&self, e: &PEntry) -> &[u8] {
        &self.buf[e.mstart..e.mend]
    }

    fn find(&self, member: &[u8]) -> Option<(usize, PEntry)> {
        self.entries()
            .enumerate()
            .find(|(_, e)| self.member(e) == member)
    }

    /// Inserts a (new) member at its place in the order.
    fn insert(&mut self, member: &[u8], score: f64) {
        let at = self
            .entries()
            .find(|e| cmp_elem(e.score, self.member(e), score, member) == Ordering::Greater)
            .map_or(self.buf.len(), |e| e.start);
        let mut enc = Vec::with_capacity(member.len() + 10);
        encode_entry(&mut enc, member, score);
        // Grow exactly, like a listpack's realloc: no doubling slack per small set.
        self.buf.reserve_exact(enc.len());
        self.buf.splice(at..at, enc);
        self.len += 1;
    }

    /// Byte offset of the entry of rank `r` (the buffer's end for `r == len`).
    fn offset_of_rank(&self, r: usize) -> usize {
        self.entries().nth(r).map_or(self.buf.len(), |e| e.start)
    }
}

// ---------------------------------------------------------------------------------------
// Skiplist encoding
// ---------------------------------------------------------------------------------------

/// No node.
const NIL: u32 = u32::MAX;
/// The header node's index.
const HEAD: u32 = 0;
/// Redis's `ZSKIPLIST_MAXLEVEL`.
const MAX_LEVEL: usize = 32;

/// One level of a node: the next node at this level and how many ranks it skips.
#[derive(Clone, Copy, Debug)]
struct Level {
    forward: u32,
    span: u32,
}

/// A skiplist node. Level 0 is inline; most nodes (3 in 4) have no upper level, so
/// `upper` is an empty box that allocates nothing. A member of up to 15 bytes is stored
/// in the node itself ([`CompactBytes`]), a longer one in one exact heap block.
#[derive(Clone, Debug)]
struct Node {
    member: CompactBytes,
    score: f64,
    backward: u32,
    level0: Level,
    upper: Box<[Level]>,
}

/// The "skiplist" encoding: skiplist with spans over an arena, plus member index.
#[derive(Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    map: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    rng: u64,
}

impl std::fmt::Debug for SkipList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipList").field("len", &self.len).finish()
    }
}

impl SkipList {
    /// An empty skiplist.
    pub fn new() -> SkipList {
        let head = Node {
            member: CompactBytes::new(b""),
            score: 0.0,
            backward: NIL,
            level0: Level {
                forward: NIL,
                span: 0,
            },
            upper: vec![
                Level {
                    forward: NIL,
                    span: 0
                };
                MAX_LEVEL - 1
            ]
            .into_boxed_slice(),
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            map: HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x5a5e7),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    #[inline]
    fn lv(&self, x: u32, i: usize) -> Level {
        let n = &self.nodes[x as usize];
        if i == 0 {
            n.level0
        } else {
            n.upper[i - 1]
        }
    }

    #[inline]
    fn lv_mut(&mut self, x: u32, i: usize) -> &mut Level {
        let n = &mut self.nodes[x as usize];
        if i == 0 {
            &mut n.level0
        } else {
            &mut n.upper[i - 1]
        }
    }

    /// Redis's `zslRandomLevel`: p = 1/4, at most 32.
    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
            if (r >> 32) & 0xFFFF < 0xFFFF / 4 && level < MAX_LEVEL {
                level += 1;
            } else {
                return level;
            }
        }
    }

    /// True when node `a` comes before node `b`.
    #[inline]
    fn node_less(&self, a: u32, b: u32) -> bool {
        let (a, b) = (&self.nodes[a as usize], &self.nodes[b as usize]);
        cmp_elem(a.score, &a.member, b.score, &b.member) == Ordering::Less
    }

    /// Links node `x` (its score and member set) into the list with a fresh level.
    fn link(&mut self, x: u32) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut p = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let l = self.lv(p, i);
                if l.forward != NIL && self.node_less(l.forward, x) {
                    rank[i] += l.span;
                    p = l.forward;
                } else {
                    break;
                }
            }
            update[i] = p;
        }
        let lvl = self.random_level();
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = HEAD;
                self.lv_mut(HEAD, i).span = self.len as u32;
            }
            self.level = lvl;
        }
        self.nodes[x as usize].upper = vec![
            Level {
                forward: NIL,
                span: 0
            };
            lvl - 1
        ]
        .into_boxed_slice();
        for i in 0..lvl {
            let u = self.lv(update[i], i);
            let moved = rank[0] - rank[i];
            *self.lv_mut(x, i) = Level {
                forward: u.forward,
                span: u.span - moved,
            };
            *self.lv_mut(update[i], i) = Level {
                forward: x,
                span: moved + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            self.lv_mut(u, i).span += 1;
        }
        self.nodes[x as usize].backward = if update[0] == HEAD { NIL } else { update[0] };
        let f = self.nodes[x as usize].level0.forward;
        if f != NIL {
            self.nodes[f as usize].backward = x;
        } else {
            self.tail = x;
        }
        self.len += 1;
    }

    /// Unlinks node `x` from the list (it stays in the arena and the member index).
    fn unlink(&mut self, x: u32) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut p = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.lv(p, i);
                if l.forward != NIL && l.forward != x && self.node_less(l.forward, x) {
                    p = l.forward;
                } else {
                    break;
                }
            }
            update[i] = p;
        }
        debug_assert_eq!(self.lv(update[0], 0).forward, x);
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = self.lv(u, i);
            if ul.forward == x {
                let xl = self.lv(x, i);
                *self.lv_mut(u, i) = Level {
                    forward: xl.forward,
                    span: ul.span + xl.span - 1,
                };
            } else {
                self.lv_mut(u, i).span -= 1;
            }
        }
        let (f, b) = (
            self.nodes[x as usize].level0.forward,
            self.nodes[x as usize].backward,
        );
        if f != NIL {
            self.nodes[f as usize].backward = b;
        } else {
            self.tail = b;
        }
        while self.level > 1 && self.lv(HEAD, self.level - 1).forward == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    /// The node holding `member`.
    #[inline]
    fn find(&self, member: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(member);
        self.map
            .find(h, |&i| &*self.nodes[i as usize].member == member)
            .copied()
    }

    /// Inserts a new member.
    fn insert(&mut self, member: &[u8], score: f64) {
        let node = Node {
            member: CompactBytes::new(member),
            score,
            backward: NIL,
            level0: Level {
                forward: NIL,
                span: 0,
            },
            upper: Box::default(),
        };
        let x = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.link(x);
        let h = self.hasher.hash_one(member);
        let SkipList {
            map, nodes, hasher, ..
        } = self;
        map.insert_unique(h, x, |&i| hasher.hash_one(&*nodes[i as usize].member));
    }

    /// Removes `member`; returns its score.
    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let h = self.hasher.hash_one(member);
        let SkipList { map, nodes, .. } = self;
        let entry = map
            .find_entry(h, |&i| &*nodes[i as usize].member == member)
            .ok()?;
        let (x, _) = entry.remove();
        self.unlink(x);
        let n = &mut self.nodes[x as usize];
        let score = n.score;
        n.member = CompactBytes::new(b"");
        n.upper = Box::default();
        self.free.push(x);
        if self.len == 0 {
            // Give the arena back when the set empties.
            self.nodes.truncate(1);
            self.free.clear();
        }
        Some(score)
    }

    /// Changes the score of node `x`.
    fn set_score(&mut self, x: u32, score: f64) {
        // Redis's zslUpdateScore: in place when the order does not change.
        let n = &self.nodes[x as usize];
        let (b, f) = (n.backward, n.level0.forward);
        let member = &n.member;
        let after_prev = b == NIL || {
            let p = &self.nodes[b as usize];
            cmp_elem(p.score, &p.member, score, member) == Ordering::Less
        };
        let before_next = f == NIL || {
            let q = &self.nodes[f as usize];
            cmp_elem(score, member, q.score, &q.member) == Ordering::Less
        };
        if after_prev && before_next {
            self.nodes[x as usize].score = score;
            return;
        }
        self.unlink(x);
        self.nodes[x as usize].score = score;
        self.link(x);
    }

    /// Number of elements at the start of the order for which `pred(score, member)`
    /// holds (`pred` must hold for a prefix of the order).
    fn count_prefix(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut p = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.lv(p, i);
                if l.forward != NIL && {
                    let n = &self.nodes[l.forward as usize];
                    pred(n.score, &n.member)
                } {
                    rank += l.span as usize;
                    p = l.forward;
                } else {
                    break;
                }
            }
        }
        rank
    }

    /// 1-based rank of node `x`.
    fn rank_of(&self, x: u32) -> usize {
        let n = &self.nodes[x as usize];
        let (score, member) = (n.score, &n.member);
        self.count_prefix(|s, m| cmp_elem(s, m, score, member) != Ordering::Greater)
    }

    /// The node of 1-based rank `r`.
    fn by_rank(&self, r: usize) -> u32 {
        let mut p = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.lv(p, i);
                if l.forward != NIL && traversed + l.span as usize <= r {
                    traversed += l.span as usize;
                    p = l.forward;
                } else {
                    break;
                }
            }
            if traversed == r {
                return p;
            }
        }
        NIL
    }

    fn heap_size(&self) -> usize {
        let nodes: usize = self
            .nodes
            .iter()
            .map(|n| n.member.heap_size() + n.upper.len() * std::mem::size_of::<Level>())
            .sum();
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + nodes
            + self.free.capacity() * 4
            + self.map.capacity() * (std::mem::size_of::<u32>() + 1)
    }
}

impl Default for SkipList {
    fn default() -> Self {
        SkipList::new()
    }
}

// ---------------------------------------------------------------------------------------
// The sorted set
// ---------------------------------------------------------------------------------------

/// A sorted set value.
#[derive(Clone, Debug)]
pub enum ZSet {
    /// The compact encoding (`OBJECT ENCODING` "listpack").
    Packed(Packed),
    /// The skiplist encoding (`OBJECT ENCODING` "skiplist").
    Skip(Box<SkipList>),
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
    }
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

/// Iterator over (member, score) pairs from a rank, forward or backward.
pub struct Iter<'a> {
    inner: IterInner<'a>,
}

enum IterInner<'a> {
    Packed { p: &'a Packed, pos: usize },
    PackedRev { p: &'a Packed, starts: Vec<usize> },
    Skip { s: &'a SkipList, x: u32, rev: bool },
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterInner::Packed { p, pos } => {
                let p: &'a Packed = p;
                if *pos >= p.buf.len() {
                    return None;
                }
                let e = p.entry(*pos);
                *pos = e.end;
                Some((&p.buf[e.mstart..e.mend], e.score))
            }
            IterInner::PackedRev { p, starts } => {
                let p: &'a Packed = p;
                let e = p.entry(starts.pop()?);
                Some((&p.buf[e.mstart..e.mend], e.score))
            }
            IterInner::Skip { s, x, rev } => {
                let s: &'a SkipList = s;
                if *x == NIL {
                    return None;
                }
                let n = &s.nodes[*x as usize];
                *x = if *rev { n.backward } else { n.level0.forward };
                Some((&*n.member, n.score))
            }
        }
    }
}

impl ZSet {
    /// An empty (packed) set.
    pub fn new() -> ZSet {
        ZSet::Packed(Packed::default())
    }

    /// Builds a set from distinct members, in the encoding Redis's *STORE commands
    /// leave: packed when it has at most `max_entries` elements, none longer than
    /// `max_value`, a skiplist otherwise.
    pub fn from_pairs(mut pairs: Vec<(Vec<u8>, f64)>, lim: Limits) -> ZSet {
        pairs.sort_by(|a, b| cmp_elem(a.1, &a.0, b.1, &b.0));
        let total: usize = pairs.iter().map(|p| p.0.len() + 10).sum();
        let fits = pairs.len() <= lim.max_entries
            && pairs.iter().all(|p| p.0.len() <= lim.max_value)
            && total <= PACKED_MAX_BYTES;
        if fits {
            let mut p = Packed {
                buf: Vec::with_capacity(total),
                len: pairs.len(),
            };
            for (m, s) in &pairs {
                encode_entry(&mut p.buf, m, *s);
            }
            p.buf.shrink_to_fit();
            ZSet::Packed(p)
        } else {
            let mut s = SkipList::new();
            for (m, sc) in &pairs {
                s.insert(m, *sc);
            }
            ZSet::Skip(Box::new(s))
        }
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            ZSet::Packed(p) => p.len,
            ZSet::Skip(s) => s.len,
        }
    }

    /// True when the set has no element.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Packed(_) => "listpack",
            ZSet::Skip(_) => "skiplist",
        }
    }

    /// The score of `member`.
    #[inline]
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => p.find(member).map(|(_, e)| e.score),
            ZSet::Skip(s) => s.find(member).map(|x| s.nodes[x as usize].score),
        }
    }

    /// Converts a packed set to a skiplist (no-op for a skiplist).
    pub fn convert_to_skiplist(&mut self) {
        if let ZSet::Packed(p) = self {
            let mut s = SkipList::new();
            for e in p.entries() {
                s.insert(p.member(&e), e.score);
            }
            *self = ZSet::Skip(Box::new(s));
        }
    }

    /// Inserts a member that is not in the set. Like Redis's `zsetAdd`, a packed set is
    /// converted first when it would hold more than `max_entries` elements or the member
    /// is longer than `max_value`.
    pub fn insert(&mut self, member: &[u8], score: f64, lim: Limits) {
        if let ZSet::Packed(p) = self {
            if p.len + 1 > lim.max_entries
                || member.len() > lim.max_value
                || p.buf.len() + member.len() + 10 > PACKED_MAX_BYTES
            {
                self.convert_to_skiplist();
            }
        }
        match self {
            ZSet::Packed(p) => p.insert(member, score),
            ZSet::Skip(s) => s.insert(member, score),
        }
    }

    /// Changes the score of an existing member (a no-op for an absent one).
    pub fn set_score(&mut self, member: &[u8], score: f64) {
        match self {
            ZSet::Packed(p) => {
                if let Some((_, e)) = p.find(member) {
                    p.buf.drain(e.start..e.end);
                    p.len -= 1;
                    p.insert(member, score);
                }
            }
            ZSet::Skip(s) => {
                if let Some(x) = s.find(member) {
                    s.set_score(x, score);
                }
            }
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => {
                let (_, e) = p.find(member)?;
                p.buf.drain(e.start..e.end);
                p.len -= 1;
                Some(e.score)
            }
            ZSet::Skip(s) => s.remove(member),
        }
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Packed(p) => p.find(member).map(|(i, _)| i),
            ZSet::Skip(s) => s.find(member).map(|x| s.rank_of(x) - 1),
        }
    }

    /// Number of elements at the start of the order for which `pred(score, member)`
    /// holds; `pred` must hold for a prefix (e.g. `score < x`, `member <= m` in a set of
    /// equal scores). A packed set is scanned; a skiplist is searched in O(log n).
    pub fn count_prefix(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSet::Packed(p) => p
                .entries()
                .take_while(|e| pred(e.score, p.member(e)))
                .count(),
            ZSet::Skip(s) => s.count_prefix(pred),
        }
    }

    /// The elements from 0-based rank `start`, ascending, or descending from the
    /// element of ascending rank `start` when `rev`.
    pub fn iter_from(&self, start: usize, rev: bool) -> Iter<'_> {
        let inner = match self {
            ZSet::Packed(p) if !rev => IterInner::Packed {
                p,
                pos: p.offset_of_rank(start),
            },
            ZSet::Packed(p) => IterInner::PackedRev {
                p,
                starts: p.entries().take(start + 1).map(|e| e.start).collect(),
            },
            ZSet::Skip(s) => IterInner::Skip {
                s,
                x: if start < s.len {
                    s.by_rank(start + 1)
                } else {
                    NIL
                },
                rev,
            },
        };
        Iter { inner }
    }

    /// All elements in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// Removes the elements of ascending ranks `lo..hi`; returns how many went.
    pub fn remove_ranks(&mut self, lo: usize, hi: usize) -> usize {
        let hi = hi.min(self.len());
        if lo >= hi {
            return 0;
        }
        match self {
            ZSet::Packed(p) => {
                let a = p.offset_of_rank(lo);
                let b = p.offset_of_rank(hi);
                p.buf.drain(a..b);
                p.len -= hi - lo;
            }
            ZSet::Skip(s) => {
                let mut x = s.by_rank(lo + 1);
                let mut doomed = Vec::with_capacity(hi - lo);
                for _ in lo..hi {
                    doomed.push(s.nodes[x as usize].member.clone());
                    x = s.nodes[x as usize].level0.forward;
                }
                for m in doomed {
                    s.remove(&m);
                }
            }
        }
        hi - lo
    }

    /// The element of 0-based rank `r`.
    pub fn at_rank(&self, r: usize) -> Option<(&[u8], f64)> {
        if r >= self.len() {
            return None;
        }
        self.iter_from(r, false).next()
    }

    /// One step of a ZSCAN from `cursor`, calling `f` with each (member, score) returned;
    /// returns the next cursor (0 when done). A packed set is returned whole, as Redis
    /// does for a listpack; a skiplist is walked in the order of the members' 63-bit
    /// hashes (a member present for the whole scan is returned exactly once), at least
    /// `len / SCAN_SLICES` members per call.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], f64)) -> u64 {
        let s = match self {
            ZSet::Packed(_) => {
                for (m, sc) in self.iter() {
                    f(m, sc);
                }
                return 0;
            }
            ZSet::Skip(s) => s,
        };
        let mut rest: Vec<(u64, &'a [u8], f64)> = s
            .map
            .iter()
            .map(|&i| {
                let n = &s.nodes[i as usize];
                (s.hasher.hash_one(&*n.member) >> 1, &*n.member, n.score)
            })
            .filter(|e| e.0 >= cursor)
            .collect();
        let count = count.max(1).max(s.len / SCAN_SLICES);
        if rest.len() <= count {
            for (_, m, sc) in rest {
                f(m, sc);
            }
            return 0;
        }
        rest.select_nth_unstable_by_key(count - 1, |e| e.0);
        let last = rest[count - 1].0;
        let mut more = false;
        for &(h, m, sc) in &rest {
            if h <= last {
                f(m, sc);
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
            ZSet::Packed(p) => p.buf.capacity(),
            ZSet::Skip(s) => std::mem::size_of::<SkipList>() + s.heap_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn check(z: &ZSet, model: &[(Vec<u8>, f64)]) {
        assert_eq!(z.len(), model.len());
        let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(got, model);
        let rev: Vec<(Vec<u8>, f64)> = z
            .iter_from(model.len().saturating_sub(1), true)
            .map(|(m, s)| (m.to_vec(), s))
            .collect();
        let mut m2 = model.to_vec();
        m2.reverse();
        if !model.is_empty() {
            assert_eq!(rev, m2);
        }
        for (i, (m, s)) in model.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.score(m).map(f64::to_bits), Some(s.to_bits()));
            assert_eq!(
                z.at_rank(i).map(|(a, b)| (a.to_vec(), b)),
                Some((m.clone(), *s))
            );
        }
    }

    #[test]
    fn random_ops_match_a_model_in_both_encodings() {
        for max in [0usize, 1000] {
            let lim = Limits {
                max_entries: max,
                max_value: 64,
            };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
            let mut z = ZSet::new();
            let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
            for step in 0..3000 {
                let m = format!("m{}", rng.gen_range(0..200)).into_bytes();
                let s = match rng.gen_range(0..5) {
                    0 => rng.gen_range(-5..5) as f64,
                    1 => rng.gen::<f64>() * 1e6,
                    2 => -0.0,
                    3 => f64::INFINITY,
                    _ => 1.5,
                };
                match rng.gen_range(0..4) {
                    0 | 1 => match z.score(&m) {
                        Some(_) => z.set_score(&m, s),
                        None => z.insert(&m, s, lim),
                    },
                    2 => {
                        z.remove(&m);
                    }
                    _ => {
                        let lo = rng.gen_range(0..10);
                        let n = z.remove_ranks(lo, lo + rng.gen_range(0..3));
                        let hi = (lo + n).min(model.len());
                        if lo < hi {
                            model.drain(lo..hi);
                        }
                        check(&z, &model);
                        continue;
                    }
                }
                model.retain(|e| e.0 != m);
                if let Some(sc) = z.score(&m) {
                    model.push((m.clone(), sc));
                }
                model.sort_by(|a, b| cmp_elem(a.1, &a.0, b.1, &b.0));
                if step % 50 == 0 {
                    check(&z, &model);
                    let x = 0.5;
                    assert_eq!(
                        z.count_prefix(|s, _| s < x),
                        model.iter().filter(|e| e.1 < x).count()
                    );
                }
            }
            check(&z, &model);
            assert_eq!(z.encoding(), if max == 0 { "skiplist" } else { "listpack" });
        }
    }

    #[test]
    fn d2string_matches_redis() {
        let f = |v: f64| {
            let mut o = Vec::new();
            d2string(v, &mut o);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(1e17), "100000000000000000");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(f64::INFINITY), "inf");
        assert_eq!(f(1e300), "1.0000000000000001e+300");
    }
}
