//! [`ChunkVec`]: a vector kept in chunks of a fixed number of elements ([`CHUNK`] by
//! default), for the dense entry arrays of large set and hash tables and for the block
//! pointers of the key table (chunks of 2^20 there).
//!
//! A plain `Vec` of a million 32-byte entries grows by reallocating and copying: each
//! growth frees a block almost as big as the new one, and those freed pages stay resident
//! until the allocator's decay returns them (seconds), so loading a big collection
//! peaked at about twice its size, and the copy of a big one stalled its shard (15 ms for
//! the 24 MB pointer vector of 4M keys). Here only the first chunk grows (by half, up
//! to a chunk, so small tables stay small); every later chunk is allocated once at its
//! full size and never moves. Indexing costs one more (cached) load.

use std::ops::{Index, IndexMut};

/// Default elements per chunk (a power of two): 16 KiB chunks of 16-byte set members,
/// 32 KiB of 32-byte hash pairs.
pub const CHUNK: usize = 1 << DEFAULT_SHIFT;
const DEFAULT_SHIFT: u32 = 10;

/// A vector in chunks of `2^SHIFT` elements: every chunk but the last is full, and
/// every chunk but a lone first one has room for exactly `2^SHIFT` elements.
pub struct ChunkVec<T, const SHIFT: u32 = DEFAULT_SHIFT> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T: Clone, const SHIFT: u32> Clone for ChunkVec<T, SHIFT> {
    /// A copy with the same chunk capacities (a derived clone would size the last chunk
    /// to its length).
    fn clone(&self) -> Self {
        let many = self.chunks.len() > 1;
        let chunks = self
            .chunks
            .iter()
            .map(|c| {
                let mut v = Vec::with_capacity(if many { Self::CHUNK } else { c.len() });
                v.extend(c.iter().cloned());
                v
            })
            .collect();
        ChunkVec {
            chunks,
            len: self.len,
        }
    }
}

impl<T, const SHIFT: u32> Default for ChunkVec<T, SHIFT> {
    fn default() -> Self {
        ChunkVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T, const SHIFT: u32> ChunkVec<T, SHIFT> {
    /// Elements per chunk.
    pub const CHUNK: usize = 1 << SHIFT;
    const MASK: usize = Self::CHUNK - 1;

    /// An empty vector; room for `n` elements in the first chunk (at most a chunk).
    pub fn with_capacity(n: usize) -> Self {
        if n == 0 {
            return ChunkVec::default();
        }
        ChunkVec {
            chunks: vec![Vec::with_capacity(n.min(Self::CHUNK))],
            len: 0,
        }
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements the allocated chunks can hold (O(1): only a lone first chunk may be
    /// smaller than a chunk).
    #[inline]
    pub fn capacity(&self) -> usize {
        match self.chunks.len() {
            0 => 0,
            1 => self.chunks[0].capacity(),
            n => n * Self::CHUNK,
        }
    }

    /// Heap bytes (chunks and the chunk list).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
            + self.capacity() * std::mem::size_of::<T>()
    }

    /// Appends `x`.
    #[inline]
    pub fn push(&mut self, x: T) {
        if self.len & Self::MASK == 0 && self.len > 0 || self.chunks.is_empty() {
            let cap = if self.chunks.is_empty() {
                4
            } else {
                Self::CHUNK
            };
            self.chunks.push(Vec::with_capacity(cap));
        }
        let last = self.chunks.last_mut().expect("chunk");
        if last.len() == last.capacity() {
            // Only the first chunk is ever short of room: grow it by half (at least 4),
            // up to a chunk.
            let cap = last.capacity();
            last.reserve_exact((cap / 2).max(4).min(Self::CHUNK - cap).max(1));
        }
        last.push(x);
        self.len += 1;
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        let last = self.chunks.last_mut()?;
        let x = last.pop()?;
        self.len -= 1;
        if last.is_empty() && self.chunks.len() > 1 {
            self.chunks.pop();
        }
        Some(x)
    }

    /// Removes the element at `i` and returns it; the last element takes its place.
    pub fn swap_remove(&mut self, i: usize) -> T {
        assert!(i < self.len, "index out of range");
        let last = self.pop().expect("non-empty");
        if i == self.len {
            last
        } else {
            std::mem::replace(&mut self[i], last)
        }
    }

    /// The element at `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i < self.len {
            Some(&self.chunks[i >> SHIFT][i & Self::MASK])
        } else {
            None
        }
    }

    /// Gives back the spare room of a lone first chunk and of the chunk list.
    pub fn shrink_to_fit(&mut self) {
        self.shrink_to(0);
    }

    /// Like [`ChunkVec::shrink_to_fit`], keeping room for `min` elements in a lone
    /// first chunk.
    pub fn shrink_to(&mut self, min: usize) {
        if self.chunks.len() == 1 {
            self.chunks[0].shrink_to(min.min(Self::CHUNK));
        }
        self.chunks.shrink_to_fit();
    }

    /// The elements in order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flat_map(|c| c.iter_mut())
    }

    /// The elements in order.
    pub fn iter(&self) -> Iter<'_, T> {
        let mut outer = self.chunks.iter();
        let inner = outer.next().map(|c| c.iter()).unwrap_or_default();
        Iter {
            outer,
            inner,
            left: self.len,
        }
    }
}

impl<T, const SHIFT: u32> Index<usize> for ChunkVec<T, SHIFT> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> SHIFT][i & Self::MASK]
    }
}

impl<T, const SHIFT: u32> IndexMut<usize> for ChunkVec<T, SHIFT> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> SHIFT][i & Self::MASK]
    }
}

/// Iterator over a [`ChunkVec`], with an exact length.
pub struct Iter<'a, T> {
    outer: std::slice::Iter<'a, Vec<T>>,
    inner: std::slice::Iter<'a, T>,
    left: usize,
}

impl<T> Clone for Iter<'_, T> {
    fn clone(&self) -> Self {
        Iter {
            outer: self.outer.clone(),
            inner: self.inner.clone(),
            left: self.left,
        }
    }
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(x) = self.inner.next() {
                self.left -= 1;
                return Some(x);
            }
            self.inner = self.outer.next()?.iter();
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_vec() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let mut c: ChunkVec<u32> = ChunkVec::with_capacity(3);
        let mut v: Vec<u32> = Vec::new();
        for step in 0..20_000u32 {
            match rng.gen_range(0..10) {
                0..=5 => {
                    c.push(step);
                    v.push(step);
                }
                6 | 7 if !v.is_empty() => {
                    let i = rng.gen_range(0..v.len());
                    assert_eq!(c.swap_remove(i), v.swap_remove(i));
                }
                8 => assert_eq!(c.pop(), v.pop()),
                _ if !v.is_empty() => {
                    let i = rng.gen_range(0..v.len());
                    c[i] += 1;
                    v[i] += 1;
                }
                _ => {}
            }
            assert_eq!(c.len(), v.len());
            if step % 997 == 0 {
                assert!(c.iter().eq(v.iter()));
                assert_eq!(c.iter().len(), v.len());
                assert!((0..v.len()).all(|i| c.get(i) == Some(&v[i])));
                assert_eq!(c.get(v.len()), None);
                // Every chunk but the last is full, and no chunk is empty but the first.
                let n = c.chunks.len();
                for (k, ch) in c.chunks.iter().enumerate() {
                    if k + 1 < n {
                        assert_eq!(ch.len(), CHUNK);
                    }
                    assert!(k == 0 || !ch.is_empty());
                    assert!(ch.capacity() <= CHUNK);
                }
                assert_eq!(
                    c.capacity(),
                    c.chunks.iter().map(|ch| ch.capacity()).sum::<usize>()
                );
            }
        }
        while c.pop().is_some() {}
        assert!(c.is_empty());
        c.shrink_to_fit();
        assert_eq!(c.capacity(), 0);
    }

    #[test]
    fn later_chunks_are_allocated_whole() {
        let mut c: ChunkVec<usize> = ChunkVec::default();
        for i in 0..CHUNK + 1 {
            c.push(i);
        }
        assert_eq!(c.capacity(), 2 * CHUNK);
        assert_eq!(c[CHUNK], CHUNK);
        let mut d = c.clone();
        assert!(d.iter().eq(c.iter()));
        let caps: Vec<usize> = d.chunks.iter().map(|ch| ch.capacity()).collect();
        assert_eq!(caps, vec![CHUNK, CHUNK]);
        d.push(7);
        assert_eq!(d.capacity(), 2 * CHUNK);
        let small: ChunkVec<usize> = ChunkVec::with_capacity(10);
        let mut e = small.clone();
        e.push(1);
        assert_eq!(e.capacity(), e.chunks[0].capacity());
    }
}
