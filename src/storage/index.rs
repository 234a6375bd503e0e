//! The hash index of a [`super::Table`]: from a key's hash to its 4-byte position in
//! the table's vector of blocks.
//!
//! It is a directory of segments (extendible hashing, as Dragonfly's dashtable): the top
//! `depth` bits of a hash pick a directory entry, which names the segment holding the
//! key. Each segment is a small SwissTable laid out for size: groups of 8 slots with
//! their 8 control bytes (7 bits of the hash, or empty, or deleted) in one 40-byte
//! record, any number of groups (a key's first group is picked by multiplying the
//! hash's remaining bits by the group count, so no power-of-two size is needed), linear
//! probing over groups.
//!
//! A segment that is 7/8 full grows alone: rebuilt at one and a half times its groups
//! while it is under [`SEGMENT_MAX_GROUPS`], split in two by the next hash bit past
//! that. Either way only its own keys are re-hashed (each read back from its block, as
//! the hash is not stored), so an insert pauses for at most one segment's worth of keys
//! (about 28k, a millisecond or so) instead of the whole table's (a rebuild of a
//! single 5M-key index stalled a shard for over 300 ms). The directory doubles when a
//! segment that spans a single entry splits; it holds 4 bytes per segment.

/// Slots per group.
const GROUP: usize = 8;
/// Used slots per group at most (7/8 fill).
const GROUP_MAX: usize = 7;
/// Bytes of one group.
pub const GROUP_BYTES: usize = std::mem::size_of::<Group>();
/// Control byte of an empty slot (a lookup stops at a group that has one).
const EMPTY: u8 = 0xFF;
/// Control byte of a deleted slot (a tombstone: lookups go on past it).
const DELETED: u8 = 0x80;
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Groups a segment may reach by growing in place; past that it splits. 4096 groups
/// are 160 KiB and hold up to 28,672 keys.
pub const SEGMENT_MAX_GROUPS: usize = 4096;

/// Eight slots and their control bytes (byte `i` of `ctrl` is slot `i`'s: `EMPTY`,
/// `DELETED`, or 7 bits of the hash of the key it holds).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Group {
    ctrl: u64,
    slots: [u32; GROUP],
}

/// One segment: a SwissTable over the hashes whose top `depth` bits it owns.
struct Segment {
    groups: Vec<Group>,
    /// How many top bits of the hash its keys share (its local depth).
    depth: u32,
    /// Slots holding a position.
    items: usize,
    /// Inserts left before it must grow (empty slots within the 7/8 fill, minus
    /// tombstones).
    growth_left: usize,
}

/// A slot of the index: (segment, group, slot in group).
pub type SlotRef = (usize, usize, usize);

/// The hash index (see the module docs).
#[derive(Default)]
pub struct Index {
    /// Segment of each value of the hash's top `depth` bits.
    dir: Vec<u32>,
    /// Bits of the hash the directory uses.
    depth: u32,
    segs: Vec<Segment>,
    /// Slots holding a position, over all segments.
    items: usize,
    /// Sum of the segments' `growth_left`.
    growth_left: usize,
    /// Sum of the segments' group counts.
    groups: usize,
    /// Segments with no growth left (the next insert into one grows it).
    full: usize,
}

/// What the index asks of its table when it re-hashes a segment's positions: their
/// keys' hashes, and prefetches so that the reads of many keys overlap.
pub trait Keys {
    /// The hash of the key at position `v`.
    fn hash_at(&self, v: u32) -> u64;
    /// Starts loading the block pointer of position `v`.
    fn prefetch_pointer(&self, v: u32);
    /// Starts loading the key of position `v` (its pointer is likely loaded already).
    fn prefetch_key(&self, v: u32);
}

/// How many positions ahead a re-hash prefetches keys (and twice that, pointers).
const REHASH_AHEAD: usize = 16;

/// Groups that hold `items` positions at most 7/8 full.
fn groups_for(items: usize) -> usize {
    items.div_ceil(GROUP_MAX).max(1)
}

impl Segment {
    fn with_groups(n: usize, depth: u32) -> Segment {
        let groups = vec![
            Group {
                ctrl: u64::MAX,
                slots: [0; GROUP],
            };
            n
        ];
        Segment {
            groups,
            depth,
            items: 0,
            growth_left: n * GROUP_MAX,
        }
    }

    /// The first group of a hash in this segment and its 7-bit tag. The group is picked
    /// from the bits below the `depth` the directory used.
    #[inline]
    fn start(&self, h: u64) -> (usize, u8) {
        let rest = h << self.depth;
        let g = ((rest as u128 * self.groups.len() as u128) >> 64) as usize;
        (g, (h & 0x7F) as u8)
    }

    #[inline]
    fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, usize, u32)> {
        let n = self.groups.len();
        let (mut g, tag) = self.start(h);
        for _ in 0..n {
            let group = &self.groups[g];
            let mut m = match_tag(group.ctrl, tag);
            while m != 0 {
                let s = (m.trailing_zeros() / 8) as usize;
                let v = group.slots[s];
                if eq(v) {
                    return Some((g, s, v));
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

    /// Inserts a position; the segment has growth left. Returns true if the slot it
    /// took was empty (not a tombstone).
    #[inline]
    fn insert(&mut self, h: u64, v: u32) -> bool {
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
                return was_empty;
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
    }

    /// The positions it holds.
    fn positions(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups.iter().flat_map(|g| {
            (0..GROUP)
                .filter_map(move |s| ((g.ctrl >> (s * 8)) as u8 & 0x80 == 0).then_some(g.slots[s]))
        })
    }
}

impl Index {
    /// An index sized for `items` positions (more segments for more items, so that none
    /// starts past [`SEGMENT_MAX_GROUPS`]).
    pub fn with_capacity(items: usize) -> Index {
        let total = groups_for(items);
        let nsegs = total.div_ceil(SEGMENT_MAX_GROUPS).next_power_of_two();
        let depth = nsegs.trailing_zeros();
        let per = total.div_ceil(nsegs);
        let segs: Vec<Segment> = (0..nsegs)
            .map(|_| Segment::with_groups(per, depth))
            .collect();
        Index {
            dir: (0..nsegs as u32).collect(),
            depth,
            segs,
            items: 0,
            growth_left: nsegs * per * GROUP_MAX,
            groups: nsegs * per,
            full: 0,
        }
    }

    /// Positions held.
    #[inline]
    pub fn len(&self) -> usize {
        self.items
    }

    /// True when it holds no position.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Inserts the index can take before some segment grows, at least (the sum over
    /// segments: one of them may fill first).
    #[inline]
    pub fn growth_left(&self) -> usize {
        self.growth_left
    }

    /// Bytes of the groups and the directory.
    pub fn bytes(&self) -> usize {
        self.groups * GROUP_BYTES
            + self.dir.capacity() * std::mem::size_of::<u32>()
            + self.segs.capacity() * std::mem::size_of::<Segment>()
    }

    /// Bytes the next insert may allocate: when some segment is full, what growing one
    /// costs (a split or a rebuild at one and a half times; the old groups are freed
    /// after).
    pub fn growth_bytes(&self) -> usize {
        if self.full == 0 {
            return 0;
        }
        groups_for(self.groups.min(SEGMENT_MAX_GROUPS) * GROUP_MAX * 3 / 2) * GROUP_BYTES
    }

    /// The segment of a hash.
    #[inline]
    fn seg_of(&self, h: u64) -> usize {
        let i = if self.depth == 0 {
            0
        } else {
            (h >> (64 - self.depth)) as usize
        };
        self.dir[i] as usize
    }

    /// The slot holding a position for which `eq` holds among those with `h`'s tag.
    #[inline]
    pub fn find(&self, h: u64, eq: impl FnMut(u32) -> bool) -> Option<(SlotRef, u32)> {
        if self.segs.is_empty() {
            return None;
        }
        let seg = self.seg_of(h);
        self.segs[seg].find(h, eq).map(|(g, s, v)| ((seg, g, s), v))
    }

    /// Starts loading the first group a lookup of `h` reads (see
    /// [`super::Table::prefetch`]).
    #[inline]
    pub fn prefetch_group(&self, h: u64) {
        if self.segs.is_empty() {
            return;
        }
        let seg = &self.segs[self.seg_of(h)];
        let (g, _) = seg.start(h);
        prefetch_span(&seg.groups[g] as *const Group as *const u8, GROUP_BYTES);
    }

    /// The position in the first slot of `h`'s first group whose tag matches (the
    /// likely answer of a lookup, for prefetching its block).
    #[inline]
    pub fn first_candidate(&self, h: u64) -> Option<u32> {
        if self.segs.is_empty() {
            return None;
        }
        let seg = &self.segs[self.seg_of(h)];
        let (g, tag) = seg.start(h);
        let group = &seg.groups[g];
        let m = match_tag(group.ctrl, tag);
        (m != 0).then(|| group.slots[(m.trailing_zeros() / 8) as usize])
    }

    /// Inserts a position whose key is not in the index. When its segment is full it
    /// grows or splits first, re-hashing its positions' keys (`v` itself is not asked
    /// for).
    #[inline]
    pub fn insert(&mut self, h: u64, v: u32, keys: &impl Keys) {
        if self.segs.is_empty() {
            *self = Index::with_capacity(1);
        }
        let mut seg = self.seg_of(h);
        if self.segs[seg].growth_left == 0 {
            self.grow(seg, keys);
            seg = self.seg_of(h);
        }
        let s = &mut self.segs[seg];
        if s.insert(h, v) {
            self.growth_left -= 1;
            if s.growth_left == 0 {
                self.full += 1;
            }
        }
        self.items += 1;
    }

    /// Grows full segment `seg`: rebuilt at one and a half times its groups, or split
    /// in two by its next hash bit once that would pass [`SEGMENT_MAX_GROUPS`].
    #[cold]
    #[inline(never)]
    fn grow(&mut self, seg: usize, keys: &impl Keys) {
        let old = &self.segs[seg];
        let want = groups_for((old.items + 1) * 3 / 2);
        let depth = old.depth;
        let positions: Vec<u32> = old.positions().collect();
        // Each key read is a cache miss or two (pointer, block) at random places:
        // prefetched ahead, many are in flight at once.
        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(positions.len());
        for (i, &v) in positions.iter().enumerate() {
            if let Some(&p) = positions.get(i + 2 * REHASH_AHEAD) {
                keys.prefetch_pointer(p);
            }
            if let Some(&p) = positions.get(i + REHASH_AHEAD) {
                keys.prefetch_key(p);
            }
            entries.push((keys.hash_at(v), v));
        }
        let old_groups = old.groups.len();
        let old_growth = old.growth_left;
        self.full -= (old_growth == 0) as usize;
        if want <= SEGMENT_MAX_GROUPS || depth >= 32 {
            let mut s = Segment::with_groups(want, depth);
            for &(h, v) in &entries {
                s.insert(h, v);
            }
            self.replace_segment(seg, s, old_groups, old_growth);
            return;
        }
        // Split: keys whose next bit is 1 move to a new segment.
        if depth == self.depth {
            self.dir = self.dir.iter().flat_map(|&s| [s, s]).collect();
            self.depth += 1;
        }
        let bit = 63 - depth;
        let ones = entries.iter().filter(|(h, _)| h >> bit & 1 == 1).count();
        let zeros = entries.len() - ones;
        let mut low = Segment::with_groups(groups_for((zeros + 1) * 3 / 2), depth + 1);
        let mut high = Segment::with_groups(groups_for((ones + 1) * 3 / 2), depth + 1);
        for &(h, v) in &entries {
            if h >> bit & 1 == 1 {
                high.insert(h, v);
            } else {
                low.insert(h, v);
            }
        }
        let high_id = self.segs.len() as u32;
        self.groups += high.groups.len();
        self.growth_left += high.growth_left;
        self.segs.push(high);
        self.replace_segment(seg, low, old_groups, old_growth);
        // Directory entries of the old segment whose bit at `depth` is 1 go to `high`.
        let shift = self.depth - depth - 1;
        for (i, d) in self.dir.iter_mut().enumerate() {
            if *d as usize == seg && (i >> shift) & 1 == 1 {
                *d = high_id;
            }
        }
    }

    /// Puts `s` in place of segment `seg` (which had `old_groups` groups and
    /// `old_growth` growth left), keeping the totals right.
    fn replace_segment(&mut self, seg: usize, s: Segment, old_groups: usize, old_growth: usize) {
        self.groups = self.groups - old_groups + s.groups.len();
        self.growth_left = self.growth_left - old_growth + s.growth_left;
        self.segs[seg] = s;
    }

    /// Empties a slot. A group that still has an empty slot was never full, so no
    /// lookup went past it: its slot becomes empty again; otherwise a tombstone.
    pub fn remove(&mut self, (seg, g, s): SlotRef) {
        let segment = &mut self.segs[seg];
        let group = &mut segment.groups[g];
        if match_empty(group.ctrl) != 0 {
            set_ctrl(&mut group.ctrl, s, EMPTY);
            if segment.growth_left == 0 {
                self.full -= 1;
            }
            segment.growth_left += 1;
            self.growth_left += 1;
        } else {
            set_ctrl(&mut group.ctrl, s, DELETED);
        }
        segment.items -= 1;
        self.items -= 1;
    }

    /// Overwrites the position in a slot.
    #[inline]
    pub fn set(&mut self, (seg, g, s): SlotRef, v: u32) {
        self.segs[seg].groups[g].slots[s] = v;
    }

    /// Number of segments (tests).
    #[cfg(test)]
    pub fn segments(&self) -> usize {
        self.segs.len()
    }

    /// Checks the bookkeeping and that every position sits in the segment the
    /// directory gives for its hash (tests).
    #[cfg(test)]
    pub fn check(&self, keys: &impl Keys) {
        let items: usize = self.segs.iter().map(|s| s.items).sum();
        let growth: usize = self.segs.iter().map(|s| s.growth_left).sum();
        let groups: usize = self.segs.iter().map(|s| s.groups.len()).sum();
        let full = self.segs.iter().filter(|s| s.growth_left == 0).count();
        assert_eq!(
            (items, growth, groups, full),
            (self.items, self.growth_left, self.groups, self.full)
        );
        if self.segs.is_empty() {
            return;
        }
        assert_eq!(self.dir.len(), 1 << self.depth);
        for (i, seg) in self.segs.iter().enumerate() {
            assert!(seg.depth <= self.depth);
            // The size of the biggest segment bounds the pause of a growth.
            assert!(seg.groups.len() <= SEGMENT_MAX_GROUPS);
            assert_eq!(
                self.dir.iter().filter(|&&d| d as usize == i).count(),
                1 << (self.depth - seg.depth),
                "segment {i} spans 2^(global - local depth) directory entries"
            );
            for v in seg.positions() {
                assert_eq!(
                    self.seg_of(keys.hash_at(v)),
                    i,
                    "position {v} in segment {i}"
                );
            }
        }
    }
}

/// High bit set in each byte of `ctrl` equal to `tag` (with rare false positives on
/// other full slots, which the key comparison rejects).
#[inline]
fn match_tag(ctrl: u64, tag: u8) -> u64 {
    let x = ctrl ^ (LO * tag as u64);
    x.wrapping_sub(LO) & !x & HI
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

/// Asks the CPU to load the cache lines of `len` bytes at `p` (a hint: no fault, no
/// effect on what is read later).
#[inline(always)]
pub fn prefetch_span(p: *const u8, len: usize) {
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
