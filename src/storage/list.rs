//! List values (`LPUSH` and friends): a compact quicklist.
//!
//! Redis 7.0 stores every list as a "quicklist": a doubly linked list of listpacks. This
//! is the same idea without the pointers: a [`VecDeque`] of [`Node`]s, each node one
//! buffer holding several elements back to back. An element is written as its length
//! (LEB128), its bytes, and its length again written backwards (so the buffer can be
//! walked from either end, like a listpack's "backlen"). No element has an allocation of
//! its own.
//!
//! How full a node may get is Redis's `list-max-listpack-size` ("fill"): a negative fill
//! caps the node's bytes (-1 = 4 KiB, -2 = 8 KiB, -3 = 16 KiB, -4 = 32 KiB, -5 = 64 KiB),
//! a positive fill caps its number of elements (and its bytes at 8 KiB, Redis's safety
//! limit). An element bigger than a node's limit gets a node of its own.
//!
//! Pushes and pops at either end touch only the end node: O(1) (a pop at the head moves
//! the rest of that node's bytes, at most one node). Access by index walks nodes by their
//! element counts from the nearer end, then elements inside one node.
//!
//! `OBJECT ENCODING` reports "quicklist" for every list, as Redis 7.0 does.

use std::collections::VecDeque;

/// Byte caps of the negative fill values (-1 ..= -5), as Redis's `optimization_level`.
const FILL_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Redis's `SIZE_SAFETY_LIMIT`: a node of a count-capped list stays under 8 KiB.
const SAFETY_BYTES: usize = 8192;

/// One packed node: several elements in one buffer. The elements are `buf[head..]`:
/// pops at the head only advance `head`, and pushes at the head fill the space before
/// it (growing it by half the node when it runs out), so both ends are amortized O(1).
#[derive(Clone, Default)]
pub struct Node {
    buf: Vec<u8>,
    head: u32,
    count: u32,
}

/// Dead bytes before a node's elements are given back past this much (and past the
/// live bytes).
const HEAD_SLACK: usize = 1024;

/// Bytes of the LEB128 encoding of `n`.
#[inline]
fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

/// Bytes an element of `len` bytes takes in a node.
#[inline]
fn entry_size(len: usize) -> usize {
    2 * varint_len(len) + len
}

/// Writes the encoded element into `out`, which is exactly `entry_size(elem.len())` long.
#[inline]
fn encode_at(out: &mut [u8], elem: &[u8]) {
    let mut tmp = [0u8; 10];
    let mut n = elem.len();
    let mut l = 0;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            tmp[l] = b;
            l += 1;
            break;
        }
        tmp[l] = b | 0x80;
        l += 1;
    }
    out[..l].copy_from_slice(&tmp[..l]);
    out[l..l + elem.len()].copy_from_slice(elem);
    let back = &mut out[l + elem.len()..];
    for i in 0..l {
        back[i] = tmp[l - 1 - i];
    }
}

/// Appends the encoded element to `out`.
#[inline]
fn encode_into(out: &mut Vec<u8>, elem: &[u8]) {
    let mut tmp = [0u8; 10];
    let mut n = elem.len();
    let mut l = 0;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            tmp[l] = b;
            l += 1;
            break;
        }
        tmp[l] = b | 0x80;
        l += 1;
    }
    out.extend_from_slice(&tmp[..l]);
    out.extend_from_slice(elem);
    // The back length: the same groups, last group first, so that reading from the end
    // meets the most significant group first.
    for i in (0..l).rev() {
        out.push(tmp[i]);
    }
}

/// Reads the element starting at `pos`: (data range start, data length, next position).
#[inline]
fn read_fwd(buf: &[u8], pos: usize) -> (usize, usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut p = pos;
    loop {
        let b = buf[p];
        p += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let vl = p - pos;
    (p, n, p + n + vl)
}

/// Reads the element ending at `end` (exclusive): (element start, data start, data len).
#[inline]
fn read_back(buf: &[u8], end: usize) -> (usize, usize, usize) {
    // Back length groups, most significant first, read from the end backwards: the
    // byte at end-1 is the first group written forward (least significant).
    let mut p = end;
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        p -= 1;
        let b = buf[p];
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let vl = end - p;
    let data_start = p - n;
    (data_start - vl, data_start, n)
}

impl Node {
    /// Elements in this node.
    #[inline]
    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// Bytes used.
    #[inline]
    pub fn bytes(&self) -> usize {
        self.buf.len() - self.head as usize
    }

    fn iter(&self) -> NodeIter<'_> {
        NodeIter {
            buf: &self.buf,
            front: self.head as usize,
            back: self.buf.len(),
        }
    }

    /// Adds an element at the head.
    fn push_front(&mut self, elem: &[u8]) {
        let e = entry_size(elem.len());
        if (self.head as usize) < e {
            // Make room: the element plus half the live bytes (at most HEAD_SLACK) so
            // that a run of head pushes moves the node's bytes O(1) times each.
            let live = self.bytes();
            let gap = e + (live / 2).min(HEAD_SLACK);
            let mut nb = Vec::with_capacity(gap + live);
            nb.resize(gap, 0);
            nb.extend_from_slice(&self.buf[self.head as usize..]);
            self.buf = nb;
            self.head = gap as u32;
        }
        let start = self.head as usize - e;
        encode_at(&mut self.buf[start..start + e], elem);
        self.head = start as u32;
        self.count += 1;
    }

    /// Moves the head past `to` (an absolute position), giving dead space back when
    /// it outgrows the live bytes.
    fn advance_head(&mut self, to: usize) {
        self.head = to as u32;
        if to > HEAD_SLACK && to > self.bytes() {
            self.buf.drain(..to);
            self.head = 0;
        }
    }

    fn from_elems<'a>(elems: impl IntoIterator<Item = &'a [u8]>) -> Node {
        let mut n = Node::default();
        for e in elems {
            encode_into(&mut n.buf, e);
            n.count += 1;
        }
        n
    }
}

/// Iterates a node's elements from either end.
#[derive(Clone)]
struct NodeIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (s, n, next) = read_fwd(self.buf, self.front);
        self.front = next;
        Some(&self.buf[s..s + n])
    }
}

impl DoubleEndedIterator for NodeIter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let (start, s, n) = read_back(self.buf, self.back);
        self.back = start;
        Some(&self.buf[s..s + n])
    }
}

/// A list value.
#[derive(Clone, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
}

impl PartialEq for List {
    /// Same elements in the same order (node layout aside).
    fn eq(&self, other: &List) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (LEFT, index 0).
    Left,
    /// The tail (RIGHT, index -1).
    Right,
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty (an empty list is deleted from the keyspace).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes (for tests and the docs' memory figures).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The encoding name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Heap bytes used.
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
    }

    /// True when `node` may take one more element of `len` bytes under `fill`
    /// (Redis's `_quicklistNodeAllowInsert`).
    #[inline]
    fn allows(node: &Node, len: usize, fill: i64) -> bool {
        if node.count == 0 {
            return true;
        }
        let new = node.bytes() + entry_size(len);
        if fill < 0 {
            let idx = ((-fill) as usize).min(FILL_BYTES.len()) - 1;
            new <= FILL_BYTES[idx]
        } else {
            new <= SAFETY_BYTES && (node.count as i64) < fill
        }
    }

    /// Room for one more node: exactly one for the first few (most lists have one
    /// node; `VecDeque` would reserve four), doubling after.
    #[inline]
    fn reserve_node(&mut self) {
        if self.nodes.len() == self.nodes.capacity() && self.nodes.len() < 4 {
            self.nodes.reserve_exact(1);
        }
    }

    /// Pushes `elem` at `end` with node fill `fill` (`list-max-listpack-size`).
    pub fn push(&mut self, end: End, elem: &[u8], fill: i64) {
        match end {
            End::Right => {
                let fits = self
                    .nodes
                    .back()
                    .is_some_and(|n| Self::allows(n, elem.len(), fill));
                if !fits {
                    self.reserve_node();
                    self.nodes.push_back(Node::default());
                }
                let node = self.nodes.back_mut().expect("node");
                encode_into(&mut node.buf, elem);
                node.count += 1;
            }
            End::Left => {
                let fits = self
                    .nodes
                    .front()
                    .is_some_and(|n| Self::allows(n, elem.len(), fill));
                if !fits {
                    self.reserve_node();
                    self.nodes.push_front(Node::default());
                }
                self.nodes.front_mut().expect("node").push_front(elem);
            }
        }
        self.len += 1;
    }

    /// Pops the element at `end`.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let v = match end {
            End::Right => {
                let node = self.nodes.back_mut()?;
                let (start, s, n) = read_back(&node.buf, node.buf.len());
                let v = node.buf[s..s + n].to_vec();
                node.buf.truncate(start);
                node.count -= 1;
                if node.count == 0 {
                    self.nodes.pop_back();
                }
                v
            }
            End::Left => {
                let node = self.nodes.front_mut()?;
                let (s, n, next) = read_fwd(&node.buf, node.head as usize);
                let v = node.buf[s..s + n].to_vec();
                node.count -= 1;
                if node.count > 0 {
                    node.advance_head(next);
                }
                if node.count == 0 {
                    self.nodes.pop_front();
                }
                v
            }
        };
        self.len -= 1;
        Some(v)
    }

    /// The node holding index `i` (0-based, in range) and the index inside it.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut rest = i;
            for (n, node) in self.nodes.iter().enumerate() {
                if rest < node.count() {
                    return (n, rest);
                }
                rest -= node.count();
            }
        } else {
            let mut rest = self.len - 1 - i; // from the tail
            for (n, node) in self.nodes.iter().enumerate().rev() {
                if rest < node.count() {
                    return (n, node.count() - 1 - rest);
                }
                rest -= node.count();
            }
        }
        unreachable!("index in range")
    }

    /// Resolves a Redis index (negative counts from the tail) to a position.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let i = if index < 0 {
            self.len as i64 + index
        } else {
            index
        };
        (i >= 0 && (i as usize) < self.len).then_some(i as usize)
    }

    /// The element at position `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (n, j) = self.locate(i);
        let node = &self.nodes[n];
        if j <= node.count() / 2 {
            node.iter().nth(j)
        } else {
            node.iter().rev().nth(node.count() - 1 - j)
        }
    }

    /// Replaces node `n` with nodes packing `elems` under `fill` (no nodes if empty).
    fn rebuild(&mut self, n: usize, elems: Vec<Vec<u8>>, fill: i64) {
        let mut fresh: Vec<Node> = Vec::new();
        for e in &elems {
            let fits = fresh.last().is_some_and(|n| Self::allows(n, e.len(), fill));
            if !fits {
                fresh.push(Node::default());
            }
            let node = fresh.last_mut().expect("node");
            encode_into(&mut node.buf, e);
            node.count += 1;
        }
        let old = self.nodes[n].count();
        self.len = self.len - old + elems.len();
        self.nodes.remove(n);
        for (k, node) in fresh.into_iter().enumerate() {
            self.nodes.insert(n + k, node);
        }
    }

    /// Node `n`'s elements, owned.
    fn node_elems(&self, n: usize) -> Vec<Vec<u8>> {
        self.nodes[n].iter().map(|e| e.to_vec()).collect()
    }

    /// Replaces the element at position `i` (in range).
    pub fn set(&mut self, i: usize, elem: &[u8], fill: i64) {
        let (n, j) = self.locate(i);
        let mut elems = self.node_elems(n);
        elems[j] = elem.to_vec();
        self.rebuild(n, elems, fill);
    }

    /// Inserts `elem` before position `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, elem: &[u8], fill: i64) {
        if i == 0 {
            return self.push(End::Left, elem, fill);
        }
        if i >= self.len {
            return self.push(End::Right, elem, fill);
        }
        let (n, j) = self.locate(i);
        let mut elems = self.node_elems(n);
        elems.insert(j, elem.to_vec());
        self.rebuild(n, elems, fill);
    }

    /// Position of the first element equal to `elem`, from the head.
    pub fn position(&self, elem: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == elem)
    }

    /// Removes up to `max` (0 = all) elements equal to `elem`, from the head or (with
    /// `from_tail`) from the tail. Returns the number removed.
    pub fn remove_matching(&mut self, elem: &[u8], max: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let order: Vec<usize> = if from_tail {
            (0..self.nodes.len()).rev().collect()
        } else {
            (0..self.nodes.len()).collect()
        };
        let mut emptied: Vec<usize> = Vec::new();
        for n in order {
            if max != 0 && removed >= max {
                break;
            }
            if !self.nodes[n].iter().any(|e| e == elem) {
                continue;
            }
            let mut elems = self.node_elems(n);
            let before = elems.len();
            let mut keep = vec![true; before];
            let idx: Vec<usize> = if from_tail {
                (0..before).rev().collect()
            } else {
                (0..before).collect()
            };
            for k in idx {
                if max != 0 && removed >= max {
                    break;
                }
                if elems[k] == elem {
                    keep[k] = false;
                    removed += 1;
                }
            }
            let mut k = 0;
            elems.retain(|_| {
                k += 1;
                keep[k - 1]
            });
            // Rebuild in place (same node, fewer elements: it still fits).
            let node = Node::from_elems(elems.iter().map(|e| &e[..]));
            self.len -= before - node.count();
            if node.count == 0 {
                emptied.push(n);
            }
            self.nodes[n] = node;
        }
        emptied.sort_unstable();
        for n in emptied.into_iter().rev() {
            self.nodes.remove(n);
        }
        removed
    }

    /// Removes `count` elements from the head.
    pub fn trim_front(&mut self, mut count: usize) {
        while count > 0 {
            let Some(node) = self.nodes.front_mut() else {
                return;
            };
            if node.count() <= count {
                count -= node.count();
                self.len -= node.count();
                self.nodes.pop_front();
            } else {
                let mut it = node.iter();
                for _ in 0..count {
                    it.next();
                }
                let cut = it.front;
                node.advance_head(cut);
                node.count -= count as u32;
                self.len -= count;
                return;
            }
        }
    }

    /// Removes `count` elements from the tail.
    pub fn trim_back(&mut self, mut count: usize) {
        while count > 0 {
            let Some(node) = self.nodes.back_mut() else {
                return;
            };
            if node.count() <= count {
                count -= node.count();
                self.len -= node.count();
                self.nodes.pop_back();
            } else {
                let mut it = node.iter();
                for _ in 0..count {
                    it.next_back();
                }
                let cut = it.back;
                node.buf.truncate(cut);
                node.count -= count as u32;
                self.len -= count;
                return;
            }
        }
    }

    /// Iterates from the head.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// Iterates forward starting at position `i`.
    pub fn iter_from(&self, i: usize) -> Iter<'_> {
        let mut it = Iter {
            list: self,
            node: 0,
            inner: None,
        };
        if i >= self.len {
            it.node = self.nodes.len();
            return it;
        }
        let (n, j) = self.locate(i);
        let mut inner = self.nodes[n].iter();
        for _ in 0..j {
            inner.next();
        }
        it.node = n + 1;
        it.inner = Some(inner);
        it
    }

    /// Iterates backward starting at position `i` (towards the head).
    pub fn iter_rev_from(&self, i: usize) -> RevIter<'_> {
        let mut it = RevIter {
            list: self,
            node: 0,
            inner: None,
        };
        if i >= self.len {
            return it;
        }
        let (n, j) = self.locate(i);
        let node = &self.nodes[n];
        let mut inner = node.iter();
        for _ in 0..(node.count() - 1 - j) {
            inner.next_back();
        }
        it.node = n;
        it.inner = Some(inner);
        it
    }
}

/// Forward iterator over a list.
pub struct Iter<'a> {
    list: &'a List,
    /// Next node to open.
    node: usize,
    inner: Option<NodeIter<'a>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(inner) = &mut self.inner {
                if let Some(e) = inner.next() {
                    return Some(e);
                }
            }
            let node = self.list.nodes.get(self.node)?;
            self.node += 1;
            self.inner = Some(node.iter());
        }
    }
}

/// Backward iterator over a list.
pub struct RevIter<'a> {
    list: &'a List,
    /// Index of the node `inner` walks (the next one opened is `node - 1`).
    node: usize,
    inner: Option<NodeIter<'a>>,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(inner) = &mut self.inner {
                if let Some(e) = inner.next_back() {
                    return Some(e);
                }
            } else {
                return None;
            }
            if self.node == 0 {
                self.inner = None;
                return None;
            }
            self.node -= 1;
            self.inner = Some(self.list.nodes[self.node].iter());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_check(l: &List, m: &VecDeque<Vec<u8>>) {
        assert_eq!(l.len(), m.len());
        let got: Vec<&[u8]> = l.iter().collect();
        let want: Vec<&[u8]> = m.iter().map(|v| &v[..]).collect();
        assert_eq!(got, want);
        for i in 0..m.len() {
            assert_eq!(l.get(i), Some(&m[i][..]));
            let fwd: Vec<&[u8]> = l.iter_from(i).collect();
            assert_eq!(fwd.len(), m.len() - i);
            let rev: Vec<&[u8]> = l.iter_rev_from(i).collect();
            assert_eq!(rev.len(), i + 1);
            assert_eq!(rev[0], &m[i][..]);
        }
        assert_eq!(l.nodes.iter().map(|n| n.count()).sum::<usize>(), l.len());
        assert!(l.nodes.iter().all(|n| n.count > 0));
    }

    #[test]
    fn random_ops_match_a_vecdeque() {
        use rand::{Rng, SeedableRng};
        for fill in [-2i64, -1, 1, 3, 128] {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(7 + fill as u64);
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for step in 0..3000 {
                let len = match rng.gen_range(0..10) {
                    0 => rng.gen_range(100..300),
                    1 => rng.gen_range(5000..9000),
                    _ => rng.gen_range(0..20),
                };
                let v: Vec<u8> = (0..len).map(|_| rng.gen_range(b'a'..b'e')).collect();
                match rng.gen_range(0..10) {
                    0 | 1 => {
                        l.push(End::Left, &v, fill);
                        m.push_front(v);
                    }
                    2 | 3 => {
                        l.push(End::Right, &v, fill);
                        m.push_back(v);
                    }
                    4 => assert_eq!(l.pop(End::Left), m.pop_front()),
                    5 => assert_eq!(l.pop(End::Right), m.pop_back()),
                    6 if !m.is_empty() => {
                        let i = rng.gen_range(0..m.len());
                        l.set(i, &v, fill);
                        m[i] = v;
                    }
                    7 => {
                        let i = rng.gen_range(0..=m.len());
                        l.insert(i, &v, fill);
                        m.insert(i, v);
                    }
                    8 if !m.is_empty() => {
                        let target = m[rng.gen_range(0..m.len())].clone();
                        let max = rng.gen_range(0..3);
                        let tail = rng.gen_bool(0.5);
                        let n = l.remove_matching(&target, max, tail);
                        let mut removed = 0;
                        if tail {
                            let mut i = m.len();
                            while i > 0 && (max == 0 || removed < max) {
                                i -= 1;
                                if m[i] == target {
                                    m.remove(i);
                                    removed += 1;
                                }
                            }
                        } else {
                            let mut i = 0;
                            while i < m.len() && (max == 0 || removed < max) {
                                if m[i] == target {
                                    m.remove(i);
                                    removed += 1;
                                } else {
                                    i += 1;
                                }
                            }
                        }
                        assert_eq!(n, removed);
                    }
                    9 if !m.is_empty() => {
                        let a = rng.gen_range(0..=m.len().min(3));
                        let b = rng.gen_range(0..=(m.len() - a).min(3));
                        l.trim_front(a);
                        l.trim_back(b);
                        m.drain(..a);
                        m.truncate(m.len() - b);
                    }
                    _ => {}
                }
                if step % 50 == 0 {
                    model_check(&l, &m);
                }
            }
            model_check(&l, &m);
        }
    }

    #[test]
    fn nodes_respect_the_fill() {
        let mut l = List::new();
        for _ in 0..1000 {
            l.push(End::Right, b"0123456789", -2);
        }
        // 12 bytes an element, 8 KiB a node.
        assert!(l.node_count() <= 2);
        let mut c = List::new();
        for _ in 0..10 {
            c.push(End::Left, b"x", 3);
        }
        assert_eq!(c.node_count(), 4);
        let mut big = List::new();
        big.push(End::Right, &vec![b'x'; 100_000], -2);
        big.push(End::Right, b"y", -2);
        assert_eq!(big.node_count(), 2);
        assert_eq!(big.get(1), Some(&b"y"[..]));
        let long = vec![b'z'; 300];
        big.push(End::Left, &long, -2);
        assert_eq!(big.get(0), Some(&long[..]));
    }
}
