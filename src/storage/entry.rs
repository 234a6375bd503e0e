//! A key's stored entry: one heap block holding an 8-byte header, the key and the value.
//!
//! Most keys hold strings, so a string or integer value lives in the same block as its
//! key (one allocation per key, no pointer to chase after the key comparison); other
//! types keep a boxed [`Value`] in the block. A key with a TTL carries its expiry time
//! (and its place in the database's list of keys with a TTL) in the block too, so keys
//! without one pay nothing for it. See docs/keyspace.md for the layout and the figures.
//!
//! Block layout (offsets from the block's start, which is 8-aligned):
//!
//! ```text
//! 0   access: u32, freq: u8, flags: u8 (kind: 2 bits, volatile: 1, snapshot epoch: 1)
//! 6   [expire_at: u64, vpos: u32]   only for a key with a TTL (read unaligned)
//! ..  key length (LEB128), key bytes
//! ..  KIND_STR: value length (LEB128), bytes; KIND_INT: i64 little-endian;
//!     KIND_BOXED: padding to 8, then the Value (32 bytes);
//!     KIND_HASH: padding to 8, then the Hash (16 bytes: a small hash's packed block
//!     or a table pointer)
//! ```
//!
//! A 100-byte string under a 10-byte key takes 118 bytes: jemalloc's 128-byte class.
//!
//! [`Entry`] is the block seen as a Rust dynamically sized type (the header's fields and
//! a trailing byte slice), so `&mut Entry` borrows work as they did when entries were
//! plain structs. [`Node`] owns a block. [`Detached`] is an entry taken out of a
//! database (RENAME, MOVE, DUMP...), with its value as an owned [`Value`].

use super::hash::Hash;
use super::value::{Value, ValueRef};
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Redis's `LFU_INIT_VAL`: the counter of a new key.
pub const LFU_INIT_VAL: u8 = 5;
/// Redis's default `lfu-decay-time` (minutes).
pub const LFU_DECAY_MINUTES: u32 = 1;

const KIND_STR: u8 = 0;
const KIND_INT: u8 = 1;
const KIND_BOXED: u8 = 2;
const KIND_HASH: u8 = 3;
const KIND_MASK: u8 = 3;
const FLAG_VOLATILE: u8 = 4;
const FLAG_EPOCH: u8 = 8;

const HEAD: usize = 6;
const VOLATILE_AREA: usize = 12;
const BOXED_AREA: usize = std::mem::size_of::<Value>();
const HASH_AREA: usize = std::mem::size_of::<Hash>();
const ALIGN: usize = 8;

#[inline]
fn align_up(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

/// A stored entry: the header fields, then the key and value bytes (see the module docs).
#[repr(C)]
pub struct Entry {
    /// Last access, in seconds of the shard's LRU clock (for OBJECT IDLETIME).
    pub access: u32,
    /// Logarithmic access counter as Redis's LFU keeps it (OBJECT FREQ; eviction reads
    /// it too). Decays by one per `lfu-decay-time` idle minutes.
    pub freq: u8,
    flags: u8,
    data: [u8],
}

/// An entry taken out of a database, or built to be put into one: the value as an owned
/// [`Value`] plus the metadata.
#[derive(Clone, Debug)]
pub struct Detached {
    /// The value.
    pub value: Value,
    /// Absolute expiry time in Unix milliseconds; 0 means no expiry.
    pub expire_at: u64,
    /// Last access (LRU clock seconds).
    pub access: u32,
    /// LFU counter.
    pub freq: u8,
}

#[inline]
fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[inline]
fn put_varint(out: &mut [u8], mut v: usize) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

#[inline]
fn get_varint(data: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = data[i];
        v |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b < 0x80 {
            return (v, i);
        }
        shift += 7;
    }
}

/// Total block size from the header and the start of the data (the varints).
///
/// # Safety
/// `p` points at a valid block.
#[inline]
unsafe fn block_size(p: *const u8) -> usize {
    let flags = *p.add(5);
    let mut off = HEAD;
    if flags & FLAG_VOLATILE != 0 {
        off += VOLATILE_AREA;
    }
    // Varints are read one byte at a time, which stays inside the block.
    let (klen, n) = read_varint_raw(p.add(off));
    off += n + klen;
    match flags & KIND_MASK {
        KIND_STR => {
            let (vlen, n) = read_varint_raw(p.add(off));
            off + n + vlen
        }
        KIND_INT => off + 8,
        KIND_HASH => align_up(off) + HASH_AREA,
        _ => align_up(off) + BOXED_AREA,
    }
}

/// Reads a varint byte by byte from a raw pointer.
///
/// # Safety
/// `p` points at a complete varint inside a live block.
#[inline]
unsafe fn read_varint_raw(p: *const u8) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = *p.add(i);
        v |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b < 0x80 {
            return (v, i);
        }
        shift += 7;
    }
}

/// The key of the block at `p`.
///
/// # Safety
/// `p` must point at a live block that outlives `'a` and is not mutated meanwhile.
#[inline]
pub unsafe fn key_at<'a>(p: NonNull<u8>) -> &'a [u8] {
    let p = p.as_ptr();
    let mut off = HEAD;
    if *p.add(5) & FLAG_VOLATILE != 0 {
        off += VOLATILE_AREA;
    }
    let (len, n) = read_varint_raw(p.add(off));
    std::slice::from_raw_parts(p.add(off + n), len)
}

/// The entry of the block at `p`.
///
/// # Safety
/// As [`key_at`].
#[inline]
pub unsafe fn entry_at<'a>(p: NonNull<u8>) -> &'a Entry {
    let len = block_size(p.as_ptr()) - HEAD;
    // The block is `HEAD + len` bytes, laid out as `Entry` describes; the cast keeps the
    // slice length as the DST's metadata.
    &*(std::ptr::slice_from_raw_parts(p.as_ptr(), len) as *const Entry)
}

/// The entry of the block at `p`, mutably.
///
/// # Safety
/// As [`key_at`], and no other reference to the block may exist during `'a`.
#[inline]
pub unsafe fn entry_at_mut<'a>(p: NonNull<u8>) -> &'a mut Entry {
    let len = block_size(p.as_ptr()) - HEAD;
    &mut *(std::ptr::slice_from_raw_parts_mut(p.as_ptr(), len) as *mut Entry)
}

/// The payload a new block carries.
enum Payload<'a> {
    Str(&'a [u8]),
    Int(i64),
    Hash(Hash),
    Boxed(Value),
}

/// An owned entry block. The table of a database holds these.
pub struct Node(NonNull<u8>);

// SAFETY: a Node owns its block exclusively, like a Box; the boxed Value inside is Send.
unsafe impl Send for Node {}

impl Node {
    /// A block for `key` holding `value`. Strings and integers are stored inline; a
    /// growable raw string (`Value::Raw`, kept for APPEND/SETRANGE) and other types are
    /// boxed. `expire_at` 0 = no TTL.
    pub fn new(key: &[u8], value: Value, expire_at: u64, access: u32, freq: u8) -> Node {
        match value {
            Value::Int(v) => Node::build(key, Payload::Int(v), expire_at, access, freq),
            Value::Small { len, data } => Node::build(
                key,
                Payload::Str(&data[..len as usize]),
                expire_at,
                access,
                freq,
            ),
            Value::Str(b) => Node::build(key, Payload::Str(&b), expire_at, access, freq),
            Value::Hash(h) => Node::build(key, Payload::Hash(h), expire_at, access, freq),
            other => Node::build(key, Payload::Boxed(other), expire_at, access, freq),
        }
    }

    fn build(key: &[u8], payload: Payload<'_>, expire_at: u64, access: u32, freq: u8) -> Node {
        let kind = match payload {
            Payload::Str(_) => KIND_STR,
            Payload::Int(_) => KIND_INT,
            Payload::Hash(_) => KIND_HASH,
            Payload::Boxed(_) => KIND_BOXED,
        };
        let flags = kind | if expire_at != 0 { FLAG_VOLATILE } else { 0 };
        let mut size = HEAD;
        if expire_at != 0 {
            size += VOLATILE_AREA;
        }
        let key_at = size;
        size += varint_len(key.len()) + key.len();
        let mut value_at = size;
        match &payload {
            Payload::Str(b) => size += varint_len(b.len()) + b.len(),
            Payload::Int(_) => size += 8,
            Payload::Hash(_) => {
                value_at = align_up(size);
                size = value_at + HASH_AREA;
            }
            Payload::Boxed(_) => {
                value_at = align_up(size);
                size = value_at + BOXED_AREA;
            }
        }
        let layout = Layout::from_size_align(size, ALIGN).expect("entry size");
        // SAFETY: the layout has a non-zero size; every byte of the block is written
        // below before the block is read.
        unsafe {
            let p = alloc(layout);
            if p.is_null() {
                handle_alloc_error(layout);
            }
            let bytes = std::slice::from_raw_parts_mut(p, size);
            bytes.fill(0);
            bytes[0..4].copy_from_slice(&access.to_ne_bytes());
            bytes[4] = freq;
            bytes[5] = flags;
            if expire_at != 0 {
                bytes[HEAD..HEAD + 8].copy_from_slice(&expire_at.to_ne_bytes());
            }
            let n = put_varint(&mut bytes[key_at..], key.len());
            bytes[key_at + n..key_at + n + key.len()].copy_from_slice(key);
            match payload {
                Payload::Str(b) => {
                    let n = put_varint(&mut bytes[value_at..], b.len());
                    bytes[value_at + n..].copy_from_slice(b);
                }
                Payload::Int(v) => bytes[value_at..].copy_from_slice(&v.to_le_bytes()),
                Payload::Hash(h) => std::ptr::write(p.add(value_at) as *mut Hash, h),
                Payload::Boxed(v) => std::ptr::write(p.add(value_at) as *mut Value, v),
            }
            Node(NonNull::new_unchecked(p))
        }
    }

    /// The key, read straight from the block (no size computation): the table's
    /// lookups compare and hash through this.
    #[inline]
    pub fn key(&self) -> &[u8] {
        // SAFETY: self owns a valid block for the borrow's lifetime.
        unsafe { key_at(self.0) }
    }

    /// Bytes of the block.
    #[inline]
    pub fn block_size(&self) -> usize {
        // SAFETY: self owns a valid block.
        unsafe { block_size(self.0.as_ptr()) }
    }

    /// The entry, read-only.
    #[inline]
    pub fn entry(&self) -> &Entry {
        // SAFETY: self owns a valid block for the borrow's lifetime.
        unsafe { entry_at(self.0) }
    }

    /// The entry, mutably.
    #[inline]
    pub fn entry_mut(&mut self) -> &mut Entry {
        // SAFETY: as in `entry`; `&mut self` gives exclusive access to the block.
        unsafe { entry_at_mut(self.0) }
    }

    /// Gives up ownership of the block: the table keeps the bare pointer (in 6 bytes) and
    /// rebuilds the Node with [`Node::from_raw`] to free it.
    #[inline]
    pub fn into_raw(self) -> NonNull<u8> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    /// Takes back ownership of a block given up by [`Node::into_raw`].
    ///
    /// # Safety
    /// `p` must come from `into_raw` and not be owned by another Node.
    #[inline]
    pub unsafe fn from_raw(p: NonNull<u8>) -> Node {
        Node(p)
    }

    /// Takes the entry apart into an owned [`Detached`] (the block is freed).
    pub fn into_detached(self) -> Detached {
        let e = self.entry();
        let (expire_at, access, freq) = (e.expire_at(), e.access, e.freq);
        let value = match e.kind() {
            KIND_STR => Value::from_str_bytes(e.str_bytes()),
            KIND_INT => Value::Int(e.int_value()),
            KIND_HASH => {
                let at = e.boxed_offset();
                // SAFETY: a hash block holds an initialized Hash at `at`; it is moved out
                // and the block freed below without dropping it again.
                Value::Hash(unsafe { std::ptr::read(self.0.as_ptr().add(at) as *const Hash) })
            }
            _ => {
                let at = e.boxed_offset();
                // SAFETY: a boxed block holds an initialized Value at `at`; it is moved out
                // and the block freed below without dropping it again.
                unsafe { std::ptr::read(self.0.as_ptr().add(at) as *const Value) }
            }
        };
        self.free_moved();
        Detached {
            value,
            expire_at,
            access,
            freq,
        }
    }

    /// Sets the expiry (0 = none), keeping everything else: in place when the block
    /// already has a TTL and keeps one, else the block is rebuilt. The position in the
    /// database's list of keys with a TTL is kept when both have one.
    pub fn set_expire(&mut self, expire_at: u64) {
        if expire_at != 0 && self.entry().volatile() {
            self.entry_mut().set_expire_in_place(expire_at);
        } else if expire_at != 0 || self.entry().volatile() {
            self.rebuild(expire_at, false);
        }
    }

    /// Rebuilds an inline string or integer block as a boxed one, so that its value can
    /// be changed in place (APPEND, SETRANGE, SETBIT, PFADD...). Boxed blocks stay.
    pub fn make_boxed(&mut self) {
        if self.entry().kind() < KIND_BOXED {
            let expire_at = self.entry().expire_at();
            self.rebuild(expire_at, true);
        }
    }

    fn rebuild(&mut self, expire_at: u64, force_boxed: bool) {
        let e = self.entry();
        let (epoch, access, freq, kind) = (e.snap_epoch(), e.access, e.freq, e.kind());
        let vpos = if e.volatile() { e.vpos() } else { 0 };
        let payload = match kind {
            KIND_STR if force_boxed => Payload::Boxed(Value::from_str_bytes(e.str_bytes())),
            KIND_STR => Payload::Str(e.str_bytes()),
            KIND_INT if force_boxed => Payload::Boxed(Value::Int(e.int_value())),
            KIND_INT => Payload::Int(e.int_value()),
            // SAFETY: as below, for the Hash.
            KIND_HASH => Payload::Hash(unsafe {
                std::ptr::read(self.0.as_ptr().add(e.boxed_offset()) as *const Hash)
            }),
            // SAFETY: the Value is moved into the new block; the old block is freed below
            // without dropping it (nothing between can unwind: allocation failure aborts).
            _ => Payload::Boxed(unsafe {
                std::ptr::read(self.0.as_ptr().add(e.boxed_offset()) as *const Value)
            }),
        };
        let mut node = Node::build(e.key(), payload, expire_at, access, freq);
        {
            let n = node.entry_mut();
            n.set_snap_epoch(epoch);
            if n.volatile() {
                n.set_vpos(vpos);
            }
        }
        let old = std::mem::replace(self, node);
        if kind >= KIND_BOXED {
            old.free_moved();
        }
    }

    /// Frees a boxed block whose Value was moved out.
    fn free_moved(self) {
        let size = self.block_size();
        let p = self.0.as_ptr();
        std::mem::forget(self);
        // SAFETY: the block was allocated with this layout; its Value was moved out.
        unsafe { dealloc(p, Layout::from_size_align_unchecked(size, ALIGN)) };
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let size = self.block_size();
        let p = self.0.as_ptr();
        // SAFETY: the block is valid; a boxed block's Value is dropped exactly once here,
        // then the block is freed with the layout it was allocated with.
        unsafe {
            match *p.add(5) & KIND_MASK {
                KIND_BOXED => {
                    let at = self.entry().boxed_offset();
                    std::ptr::drop_in_place(p.add(at) as *mut Value);
                }
                KIND_HASH => {
                    let at = self.entry().boxed_offset();
                    std::ptr::drop_in_place(p.add(at) as *mut Hash);
                }
                _ => {}
            }
            dealloc(p, Layout::from_size_align_unchecked(size, ALIGN));
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("expire_at", &self.expire_at())
            .field("access", &self.access)
            .field("freq", &self.freq)
            .finish()
    }
}

impl Entry {
    #[inline]
    fn volatile(&self) -> bool {
        self.flags & FLAG_VOLATILE != 0
    }

    #[inline]
    fn kind(&self) -> u8 {
        self.flags & KIND_MASK
    }

    /// The snapshot epoch bit: an entry whose epoch differs from its database's was
    /// present when the running snapshot started and is not serialized yet (see
    /// [`crate::persistence::cut`]). One snapshot runs at a time and its walk always
    /// completes (a failed one keeps stamping without writing), so one bit is enough.
    #[inline]
    pub fn snap_epoch(&self) -> u8 {
        (self.flags & FLAG_EPOCH != 0) as u8
    }

    /// Sets the snapshot epoch bit (`epoch` is 0 or 1).
    #[inline]
    pub fn set_snap_epoch(&mut self, epoch: u8) {
        if epoch & 1 != 0 {
            self.flags |= FLAG_EPOCH;
        } else {
            self.flags &= !FLAG_EPOCH;
        }
    }

    /// Offset of the key length varint in `data`.
    #[inline]
    fn key_at(&self) -> usize {
        if self.volatile() {
            VOLATILE_AREA
        } else {
            0
        }
    }

    /// The key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        let at = self.key_at();
        let (len, n) = get_varint(&self.data[at..]);
        &self.data[at + n..at + n + len]
    }

    /// Offset in `data` of what follows the key.
    #[inline]
    fn value_at(&self) -> usize {
        let at = self.key_at();
        let (len, n) = get_varint(&self.data[at..]);
        at + n + len
    }

    /// Offset of the boxed Value from the block start (boxed blocks only).
    #[inline]
    fn boxed_offset(&self) -> usize {
        align_up(HEAD + self.value_at())
    }

    fn str_bytes(&self) -> &[u8] {
        let at = self.value_at();
        let (len, n) = get_varint(&self.data[at..]);
        &self.data[at + n..at + n + len]
    }

    fn int_value(&self) -> i64 {
        let at = self.value_at();
        i64::from_le_bytes(self.data[at..at + 8].try_into().expect("8 bytes"))
    }

    /// Absolute expiry time in Unix milliseconds; 0 means no expiry.
    #[inline]
    pub fn expire_at(&self) -> u64 {
        if self.volatile() {
            u64::from_ne_bytes(self.data[0..8].try_into().expect("8 bytes"))
        } else {
            0
        }
    }

    /// Changes the expiry time of an entry that has one (the caller rebuilds the block
    /// with [`Node::with_expire`] to add or remove a TTL).
    #[inline]
    pub(crate) fn set_expire_in_place(&mut self, expire_at: u64) {
        debug_assert!(self.volatile() && expire_at != 0);
        self.data[0..8].copy_from_slice(&expire_at.to_ne_bytes());
    }

    /// Position in the database's list of keys with a TTL.
    #[inline]
    pub(crate) fn vpos(&self) -> u32 {
        u32::from_ne_bytes(self.data[8..12].try_into().expect("4 bytes"))
    }

    /// Sets the position in the database's list of keys with a TTL.
    #[inline]
    pub(crate) fn set_vpos(&mut self, pos: u32) {
        self.data[8..12].copy_from_slice(&pos.to_ne_bytes());
    }

    /// True when the entry has a TTL that has passed at `now_ms` (Redis's
    /// `keyIsExpired`: expired once the clock is past the deadline, not at it).
    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.volatile() && self.expire_at() < now_ms
    }

    /// The LFU counter decayed to `clock` (seconds), without counting an access
    /// (Redis's `LFUDecrAndReturn`).
    #[inline]
    pub fn freq_at(&self, clock: u32) -> u8 {
        let idle_minutes = clock.saturating_sub(self.access) / 60;
        let periods = idle_minutes / LFU_DECAY_MINUTES;
        self.freq.saturating_sub(periods.min(255) as u8)
    }

    /// The boxed value, if the block holds one.
    #[inline]
    fn boxed(&self) -> Option<&Value> {
        if self.kind() != KIND_BOXED {
            return None;
        }
        let at = self.boxed_offset() - HEAD;
        // SAFETY: a boxed block holds an initialized, 8-aligned Value at this offset of
        // `data` (the block start is 8-aligned and the offset from it is a multiple of 8).
        Some(unsafe { &*(self.data.as_ptr().add(at) as *const Value) })
    }

    /// The value: inline strings and integers by value or slice, others by reference.
    #[inline]
    pub fn value(&self) -> ValueRef<'_> {
        match self.kind() {
            KIND_STR => ValueRef::Str(self.str_bytes()),
            KIND_INT => ValueRef::Int(self.int_value()),
            KIND_HASH => ValueRef::Hash(self.hash_ref().expect("hash")),
            _ => ValueRef::from(self.boxed().expect("boxed")),
        }
    }

    /// The encoding name `OBJECT ENCODING` reports (a boxed growable string is "raw"
    /// whatever its length, as Redis's modified strings are).
    pub fn encoding(&self) -> &'static str {
        match self.boxed() {
            Some(v) => v.encoding(),
            None => self.value().encoding(),
        }
    }

    /// The value as a mutable [`Value`]: `None` for strings and integers stored inline
    /// (look the key up with [`crate::storage::Db::lookup_boxed`] to change those).
    #[inline]
    pub fn value_mut(&mut self) -> Option<&mut Value> {
        if self.kind() != KIND_BOXED {
            return None;
        }
        let at = self.boxed_offset() - HEAD;
        // SAFETY: as in `boxed`, and `&mut self` gives exclusive access.
        Some(unsafe { &mut *(self.data.as_mut_ptr().add(at) as *mut Value) })
    }

    /// Replaces an inline integer in place. Returns false (and changes nothing) when the
    /// entry does not hold an inline integer.
    #[inline]
    pub fn set_int_in_place(&mut self, v: i64) -> bool {
        if self.kind() != KIND_INT {
            return false;
        }
        let at = self.value_at();
        self.data[at..at + 8].copy_from_slice(&v.to_le_bytes());
        true
    }

    /// Replaces an inline string by one of the same length, in place (the block keeps
    /// its size). Returns false (and changes nothing) otherwise.
    #[inline]
    pub fn set_str_in_place(&mut self, v: &[u8]) -> bool {
        if self.kind() != KIND_STR {
            return false;
        }
        let at = self.value_at();
        let (len, n) = get_varint(&self.data[at..]);
        if len != v.len() {
            return false;
        }
        self.data[at + n..at + n + len].copy_from_slice(v);
        true
    }

    /// A copy of the entry as a [`Detached`] (COPY, DUMP of a live key...).
    pub fn to_detached(&self) -> Detached {
        Detached {
            value: self.value().to_value(),
            expire_at: self.expire_at(),
            access: self.access,
            freq: self.freq,
        }
    }

    /// Bytes of the entry's block (header, expiry, key, inline value or boxed slot).
    pub fn block_size(&self) -> usize {
        HEAD + self.data.len()
    }

    /// The boxed value, if the block holds one (collections, growable raw strings).
    #[inline]
    pub fn boxed_value(&self) -> Option<&Value> {
        self.boxed()
    }

    /// The hash, or `None` when the value is not a hash.
    #[inline]
    pub fn as_hash(&self) -> Option<&super::Hash> {
        self.hash_ref()
    }
    /// The hash, mutably.
    #[inline]
    pub fn as_hash_mut(&mut self) -> Option<&mut super::Hash> {
        if self.kind() != KIND_HASH {
            return None;
        }
        let at = self.boxed_offset() - HEAD;
        // SAFETY: a hash block holds an initialized, 8-aligned Hash at this offset of
        // `data`; `&mut self` gives exclusive access.
        Some(unsafe { &mut *(self.data.as_mut_ptr().add(at) as *mut Hash) })
    }

    #[inline]
    fn hash_ref(&self) -> Option<&Hash> {
        if self.kind() != KIND_HASH {
            return None;
        }
        let at = self.boxed_offset() - HEAD;
        // SAFETY: a hash block holds an initialized, 8-aligned Hash at this offset of
        // `data` (block start 8-aligned, offset rounded up to 8).
        Some(unsafe { &*(self.data.as_ptr().add(at) as *const Hash) })
    }

    /// The set, or `None` when the value is not a set.
    #[inline]
    pub fn as_set(&self) -> Option<&super::Set> {
        self.boxed().and_then(Value::as_set)
    }
    /// The set, mutably.
    #[inline]
    pub fn as_set_mut(&mut self) -> Option<&mut super::Set> {
        self.value_mut().and_then(Value::as_set_mut)
    }
    /// The sorted set, or `None` when the value is not a sorted set.
    #[inline]
    pub fn as_zset(&self) -> Option<&super::ZSet> {
        self.boxed().and_then(Value::as_zset)
    }
    /// The sorted set, mutably.
    #[inline]
    pub fn as_zset_mut(&mut self) -> Option<&mut super::ZSet> {
        self.value_mut().and_then(Value::as_zset_mut)
    }
    /// The list, or `None` when the value is not a list.
    #[inline]
    pub fn as_list(&self) -> Option<&super::List> {
        self.boxed().and_then(Value::as_list)
    }
    /// The list, mutably.
    #[inline]
    pub fn as_list_mut(&mut self) -> Option<&mut super::List> {
        self.value_mut().and_then(Value::as_list_mut)
    }
    /// The stream, or `None` when the value is not a stream.
    #[inline]
    pub fn as_stream(&self) -> Option<&super::Stream> {
        self.boxed().and_then(Value::as_stream)
    }
    /// The stream, mutably.
    #[inline]
    pub fn as_stream_mut(&mut self) -> Option<&mut super::Stream> {
        self.value_mut().and_then(Value::as_stream_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_integers_are_inline_and_round_trip() {
        for (key, val) in [
            (&b"k"[..], Value::from_bytes(b"hello")),
            (&b"key:123456"[..], Value::from_bytes(&[b'x'; 100])),
            (&[b'k'; 300][..], Value::from_bytes(&[b'v'; 200])),
            (&b""[..], Value::from_bytes(b"")),
            (&b"n"[..], Value::from_bytes(b"-42")),
        ] {
            for expire in [0u64, 1_700_000_000_000] {
                let mut n = Node::new(key, val.clone(), expire, 7, 9);
                assert_eq!(n.entry().key(), key);
                assert_eq!(n.entry().expire_at(), expire);
                assert_eq!(n.entry().access, 7);
                assert_eq!(n.entry().freq, 9);
                assert!(n.entry_mut().value_mut().is_none());
                let got = n.entry().value().to_value();
                assert_eq!(got.with_str(|b| b.to_vec()), val.with_str(|b| b.to_vec()));
                let d = n.into_detached();
                assert_eq!(d.expire_at, expire);
                assert_eq!(
                    d.value.with_str(|b| b.to_vec()),
                    val.with_str(|b| b.to_vec())
                );
            }
        }
    }

    #[test]
    fn a_100_byte_string_with_a_short_key_fits_a_128_byte_block() {
        for key in [&b"key:999999"[..], b"memtier-9999999"] {
            let n = Node::new(key, Value::from_bytes(&[b'x'; 100]), 0, 0, 5);
            assert!(n.block_size() <= 128, "{}", n.block_size());
        }
        let mut n = Node::new(b"e", Value::Int(1), 0, 0, 5);
        n.entry_mut().set_snap_epoch(1);
        assert_eq!(n.entry().snap_epoch(), 1);
        n.set_expire(5);
        assert_eq!(n.entry().snap_epoch(), 1);
        n.entry_mut().set_snap_epoch(0);
        assert_eq!(n.entry().snap_epoch(), 0);
    }

    #[test]
    fn small_hashes_keep_only_the_hash_handle_in_the_block() {
        let mut h = Hash::new();
        let lim = crate::storage::hash::Limits::default();
        h.set(b"name", b"user123", lim);
        h.set(b"visits", b"7", lim);
        let mut n = Node::new(b"h:123456", Value::Hash(h), 0, 0, 5);
        assert!(n.block_size() <= 32, "{}", n.block_size());
        assert_eq!(
            n.entry().as_hash().unwrap().get(b"name"),
            Some(&b"user123"[..])
        );
        assert_eq!(n.entry().value().value_type().name(), "hash");
        assert!(n.entry_mut().value_mut().is_none());
        n.entry_mut()
            .as_hash_mut()
            .unwrap()
            .set(b"visits", b"8", lim);
        n.set_expire(99);
        n.make_boxed();
        assert_eq!(n.entry().expire_at(), 99);
        assert_eq!(n.entry().as_hash().unwrap().get(b"visits"), Some(&b"8"[..]));
        let d = n.into_detached();
        assert_eq!(d.value.as_hash().unwrap().len(), 2);
    }

    #[test]
    fn boxed_values_expiry_changes_and_in_place_updates() {
        let mut n = Node::new(b"l", Value::Raw(b"abc".to_vec()), 0, 1, 2);
        n.entry_mut()
            .value_mut()
            .unwrap()
            .make_raw()
            .unwrap()
            .extend_from_slice(b"def");
        assert_eq!(
            n.entry().value().with_str(|b| b.to_vec()),
            Some(b"abcdef".to_vec())
        );
        let mut n = n;
        n.set_expire(123);
        assert_eq!(n.entry().expire_at(), 123);
        n.entry_mut().set_vpos(77);
        assert_eq!(n.entry().vpos(), 77);
        assert_eq!(n.entry().key(), b"l");
        n.set_expire(456);
        assert_eq!(n.entry().vpos(), 77);
        n.set_expire(0);
        assert_eq!(n.entry().expire_at(), 0);
        assert_eq!(
            n.entry().value().with_str(|b| b.to_vec()),
            Some(b"abcdef".to_vec())
        );
        let mut i = Node::new(b"i", Value::Int(5), 9, 0, 0);
        assert!(i.entry_mut().set_int_in_place(6));
        assert!(matches!(i.entry().value(), ValueRef::Int(6)));
        i.entry_mut().set_vpos(3);
        i.make_boxed();
        assert!(i.entry_mut().value_mut().is_some());
        assert_eq!(i.entry().expire_at(), 9);
        assert_eq!(i.entry().vpos(), 3);
        assert_eq!(
            i.entry().value().with_str(|b| b.to_vec()),
            Some(b"6".to_vec())
        );
    }
}
