//! [`CompactBytes`]: a 16-byte owned byte string for the members and fields of large
//! collections (set and hash tables).
//!
//! Up to [`INLINE_MAX`] (15) bytes are stored inside the 16 bytes themselves, with no heap
//! block at all; a longer string is one heap block of exactly its length, pointed to with
//! its length beside the pointer. A `Box<[u8]>` is as big but always allocates (a 13-byte
//! member costs 16 + 16 bytes with jemalloc), and `Vec<u8>` or `bytes::Bytes` are bigger.
//!
//! Layout (64-bit little-endian only): inline, bytes 0..15 hold the data and byte 15 holds
//! `0x80 | len`; on the heap, bytes 0..8 are the pointer and bytes 8..16 the length, whose
//! top byte (byte 15) is then below `0x80` (lengths stay below 2^56).

use std::ptr::NonNull;

#[cfg(not(all(target_pointer_width = "64", target_endian = "little")))]
compile_error!("CompactBytes assumes a 64-bit little-endian target");

/// Longest string stored inline.
pub const INLINE_MAX: usize = 15;

/// Set in byte 15 when the string is inline; the low bits are then its length.
const INLINE_TAG: u8 = 0x80;

/// A heap string: pointer and length.
#[derive(Clone, Copy)]
#[repr(C)]
struct Heap {
    ptr: NonNull<u8>,
    len: usize,
}

/// The two layouts over the same 16 bytes.
#[repr(C)]
union Repr {
    inline: [u8; 16],
    heap: Heap,
}

/// An owned byte string of 16 bytes: inline up to 15 bytes, one exact heap block beyond.
pub struct CompactBytes {
    r: Repr,
}

// SAFETY: a CompactBytes owns its heap block exclusively (like a Box<[u8]>).
unsafe impl Send for CompactBytes {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for CompactBytes {}

impl CompactBytes {
    /// A copy of `b`.
    #[inline]
    pub fn new(b: &[u8]) -> CompactBytes {
        if b.len() <= INLINE_MAX {
            let mut inline = [0u8; 16];
            inline[..b.len()].copy_from_slice(b);
            inline[15] = INLINE_TAG | b.len() as u8;
            CompactBytes { r: Repr { inline } }
        } else {
            Self::from_box(b.into())
        }
    }

    /// Takes `b` (kept as it is when longer than [`INLINE_MAX`], copied inline otherwise).
    pub fn from_box(b: Box<[u8]>) -> CompactBytes {
        if b.len() <= INLINE_MAX {
            return Self::new(&b);
        }
        let len = b.len();
        assert!(len < 1 << 56, "string too long");
        let ptr = Box::into_raw(b) as *mut u8;
        CompactBytes {
            r: Repr {
                // SAFETY: Box::into_raw never returns null.
                heap: Heap {
                    ptr: unsafe { NonNull::new_unchecked(ptr) },
                    len,
                },
            },
        }
    }

    /// True when the bytes live inside the value (no heap block).
    #[inline]
    pub fn is_inline(&self) -> bool {
        // SAFETY: byte 15 is initialized in both layouts (the tag, or the top byte of
        // the heap length).
        unsafe { self.r.inline[15] & INLINE_TAG != 0 }
    }

    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the tag tells which layout is live; a heap block holds `len` bytes.
        unsafe {
            if self.is_inline() {
                let len = (self.r.inline[15] & !INLINE_TAG) as usize;
                self.r.inline.get_unchecked(..len)
            } else {
                std::slice::from_raw_parts(self.r.heap.ptr.as_ptr(), self.r.heap.len)
            }
        }
    }

    /// The bytes, mutably (same length).
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`; the heap block is owned exclusively.
        unsafe {
            if self.is_inline() {
                let len = (self.r.inline[15] & !INLINE_TAG) as usize;
                self.r.inline.get_unchecked_mut(..len)
            } else {
                std::slice::from_raw_parts_mut(self.r.heap.ptr.as_ptr(), self.r.heap.len)
            }
        }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the heap block (0 when inline).
    #[inline]
    pub fn heap_size(&self) -> usize {
        if self.is_inline() {
            0
        } else {
            self.len()
        }
    }

    /// The bytes as a boxed slice (moves the heap block out when there is one).
    pub fn into_boxed(self) -> Box<[u8]> {
        if self.is_inline() {
            return self.as_bytes().into();
        }
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: heap layout; ownership of the block moves to the Box (no drop of `me`).
        unsafe {
            let Heap { ptr, len } = me.r.heap;
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr.as_ptr(), len))
        }
    }
}

impl Drop for CompactBytes {
    #[inline]
    fn drop(&mut self) {
        if !self.is_inline() {
            // SAFETY: heap layout: the block came from a Box<[u8]> of this length.
            unsafe {
                let Heap { ptr, len } = self.r.heap;
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    ptr.as_ptr(),
                    len,
                )));
            }
        }
    }
}

impl Clone for CompactBytes {
    #[inline]
    fn clone(&self) -> Self {
        CompactBytes::new(self.as_bytes())
    }
}

impl std::ops::Deref for CompactBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for CompactBytes {
    #[inline]
    fn from(b: &[u8]) -> Self {
        CompactBytes::new(b)
    }
}

impl PartialEq for CompactBytes {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CompactBytes {}

impl std::fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 16);
        assert_eq!(std::mem::size_of::<(CompactBytes, CompactBytes)>(), 32);
    }

    #[test]
    fn round_trips_every_length_around_the_inline_limit() {
        for len in [0usize, 1, 7, 8, 14, 15, 16, 17, 100, 70_000] {
            let b: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let c = CompactBytes::new(&b);
            assert_eq!(c.as_bytes(), &b[..], "len {len}");
            assert_eq!(c.len(), len);
            assert_eq!(c.is_inline(), len <= INLINE_MAX);
            assert_eq!(c.heap_size(), if len <= INLINE_MAX { 0 } else { len });
            let d = c.clone();
            assert_eq!(c, d);
            drop(c);
            assert_eq!(&*d, &b[..]);
            assert_eq!(&*d.into_boxed(), &b[..]);
            let e = CompactBytes::from_box(b.clone().into_boxed_slice());
            assert_eq!(&*e, &b[..]);
        }
    }

    #[test]
    fn inline_bytes_with_high_bits_stay_inline() {
        // Data bytes with the tag bit set must not confuse the layout test.
        let b = [0xffu8; 15];
        let c = CompactBytes::new(&b);
        assert!(c.is_inline());
        assert_eq!(&*c, &b[..]);
        let mut m = CompactBytes::new(&[0x80u8; 20]);
        m.as_bytes_mut()[0] = 1;
        assert_eq!(m[0], 1);
        assert_eq!(m.len(), 20);
    }

    #[test]
    fn differs_by_content() {
        assert_ne!(CompactBytes::new(b"abc"), CompactBytes::new(b"abd"));
        assert_ne!(CompactBytes::new(b""), CompactBytes::new(b"\0"));
        let long = vec![1u8; 40];
        assert_ne!(CompactBytes::new(&long), CompactBytes::new(&long[..39]));
    }
}
