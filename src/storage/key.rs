//! Keys as stored in a database: up to 22 bytes inline, longer ones on the heap.
//!
//! Most keys are short (`user:1000:session`, `key:000000012345`). Keeping them inline in
//! the table entry saves an allocation per key and, more importantly, a cache miss per
//! lookup: the key comparison reads the entry the hash index already pointed at.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Longest key stored inline.
pub const INLINE_MAX: usize = 22;

/// A stored key.
#[derive(Clone)]
pub enum CompactKey {
    /// Short key kept in place.
    Inline {
        /// Length in bytes.
        len: u8,
        /// Bytes; only `len` are meaningful.
        data: [u8; INLINE_MAX],
    },
    /// Long key on the heap.
    Heap(Box<[u8]>),
}

impl CompactKey {
    /// Copies `bytes` into a key.
    #[inline]
    pub fn new(bytes: &[u8]) -> CompactKey {
        if bytes.len() <= INLINE_MAX {
            let mut data = [0u8; INLINE_MAX];
            data[..bytes.len()].copy_from_slice(bytes);
            CompactKey::Inline {
                len: bytes.len() as u8,
                data,
            }
        } else {
            CompactKey::Heap(bytes.into())
        }
    }

    /// The key's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CompactKey::Inline { len, data } => &data[..*len as usize],
            CompactKey::Heap(b) => b,
        }
    }

    /// Heap bytes used beyond the entry itself.
    pub fn heap_size(&self) -> usize {
        match self {
            CompactKey::Inline { .. } => 0,
            CompactKey::Heap(b) => b.len(),
        }
    }
}

impl From<&[u8]> for CompactKey {
    fn from(b: &[u8]) -> Self {
        CompactKey::new(b)
    }
}

impl Borrow<[u8]> for CompactKey {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::ops::Deref for CompactKey {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for CompactKey {
    /// Hashes exactly like `[u8]`, so lookups by `&[u8]` find the key.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for CompactKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CompactKey {}

impl std::fmt::Debug for CompactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_round_trip() {
        for len in [0, 1, 21, 22, 23, 100] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let k = CompactKey::new(&bytes);
            assert_eq!(k.as_bytes(), &bytes[..]);
            assert_eq!(matches!(k, CompactKey::Inline { .. }), len <= INLINE_MAX);
        }
        assert_eq!(std::mem::size_of::<CompactKey>(), 24);
    }
}
