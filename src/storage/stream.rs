//! The stream type: entries ordered by ID, in packed nodes, plus consumer groups.
//!
//! Layout (see `docs/streams.md`): like Redis's radix tree of listpacks, entries live in
//! *nodes*, each one contiguous byte buffer holding up to `stream-node-max-entries`
//! entries, keyed in a `BTreeMap` by the ID of their first entry (Redis's master ID).
//! Each node also tracks the size its Redis listpack would have, and a new node starts
//! exactly where Redis's `streamAppendItem` starts one, so node boundaries (and so
//! DUMP payloads, `~` trimming and XINFO's `radix-tree-keys`) match Redis's. An entry in a node is `ms (8 bytes LE) | seq (8 bytes LE) |
//! flags (1 byte, bit 0 = deleted) | field count (varint) | then each field and value
//! as varint length + bytes`: no per-entry pointer or allocation. XDEL marks an entry
//! deleted (a tombstone) and frees a node when its last live entry goes, as Redis does;
//! trimming with `~` removes whole nodes only, so node boundaries follow Redis's rules.
//!
//! Consumer groups keep their pending entries list (PEL) as an ordered map from ID to
//! (consumer, delivery time, delivery count), and each consumer an ordered set of the
//! IDs it owns.

use std::collections::{BTreeMap, BTreeSet};

/// A stream entry ID: milliseconds and sequence number, ordered as a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID, `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// Builds an ID.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, or `None` past the last one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, or `None` before the first one.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// True for `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// `ms-seq` text.
    pub fn format(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        v.extend_from_slice(itoa::Buffer::new().format(self.ms).as_bytes());
        v.push(b'-');
        v.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        v
    }
}

/// Node size limits (`stream-node-max-entries`, `stream-node-max-bytes`).
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    /// Entries (live and deleted) per node; 0 = no limit.
    pub max_entries: usize,
    /// Bytes per node; 0 = no limit.
    pub max_bytes: usize,
}

impl Default for NodeLimits {
    /// Redis 7.0's defaults: 100 entries, 4096 bytes.
    fn default() -> Self {
        NodeLimits {
            max_entries: 100,
            max_bytes: 4096,
        }
    }
}

/// One node: packed entries.
#[derive(Clone, Debug, PartialEq, Default)]
struct Node {
    data: Vec<u8>,
    live: u32,
    deleted: u32,
    /// Bytes the node's Redis listpack takes, less its two counters (live and deleted
    /// entries, whose size varies): header, end byte, master entry and every entry as
    /// `streamAppendItem` encodes them. Redis cuts nodes on `lpBytes`, so this is what
    /// `stream-node-max-bytes` is compared with (see [`Node::lp_bytes`]).
    lp_fixed: usize,
}

/// Redis's `STREAM_LISTPACK_MAX_SIZE`: the byte limit when `stream-node-max-bytes` is 0
/// or larger.
const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// Bytes of an entry in Redis's node listpack (`streamAppendItem`'s layout): flags,
/// ms and seq deltas against the master ID, then, unless the fields are the master's
/// (`same`), the field count and names; the values; the `lp-count` back pointer.
fn lp_entry_size(master: StreamId, id: StreamId, fields: &[&[u8]], same: bool) -> usize {
    use crate::storage::rdb::listpack::{entry_size, int_entry_size};
    let nf = fields.len() / 2;
    let mut n = int_entry_size(0) // flags: 0..=3, one byte like 0
        + int_entry_size(id.ms.wrapping_sub(master.ms) as i64)
        + int_entry_size(id.seq.wrapping_sub(master.seq) as i64);
    let mut lp_count = nf + 3;
    if !same {
        n += int_entry_size(nf as i64);
        n += fields
            .iter()
            .step_by(2)
            .map(|f| entry_size(f))
            .sum::<usize>();
        lp_count += nf + 1;
    }
    n += fields
        .iter()
        .skip(1)
        .step_by(2)
        .map(|v| entry_size(v))
        .sum::<usize>();
    n + int_entry_size(lp_count as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = data[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// A decoded entry inside a node: its ID, flag offset and the packed fields.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    /// The entry ID.
    pub id: StreamId,
    deleted: bool,
    flag_at: usize,
    nfields: usize,
    fields: &'a [u8],
}

impl<'a> EntryRef<'a> {
    /// True for a deleted entry (a tombstone kept in its node, as Redis keeps it).
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// Number of field-value pairs.
    pub fn len(&self) -> usize {
        self.nfields
    }

    /// True when the entry has no fields (never for stored entries).
    pub fn is_empty(&self) -> bool {
        self.nfields == 0
    }

    /// The fields and values, alternating.
    pub fn items(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let data = self.fields;
        let mut pos = 0;
        (0..self.nfields * 2).map(move |_| {
            let len = get_varint(data, &mut pos) as usize;
            let s = &data[pos..pos + len];
            pos += len;
            s
        })
    }
}

impl Node {
    /// Decodes the entry at `pos`, returning it and the position after it.
    fn entry_at(&self, mut pos: usize) -> (EntryRef<'_>, usize) {
        let d = &self.data;
        let ms = u64::from_le_bytes(d[pos..pos + 8].try_into().expect("8 bytes"));
        let seq = u64::from_le_bytes(d[pos + 8..pos + 16].try_into().expect("8 bytes"));
        let flag_at = pos + 16;
        let deleted = d[flag_at] & 1 != 0;
        pos += 17;
        let nfields = get_varint(d, &mut pos) as usize;
        let start = pos;
        for _ in 0..nfields * 2 {
            let len = get_varint(d, &mut pos) as usize;
            pos += len;
        }
        let e = EntryRef {
            id: StreamId::new(ms, seq),
            deleted,
            flag_at,
            nfields,
            fields: &d[start..pos],
        };
        (e, pos)
    }

    /// Calls `f` with every entry (tombstones included) in order until it returns false.
    fn for_each<'a>(&'a self, mut f: impl FnMut(EntryRef<'a>) -> bool) -> bool {
        let mut pos = 0;
        while pos < self.data.len() {
            let (e, next) = self.entry_at(pos);
            if !f(e) {
                return false;
            }
            pos = next;
        }
        true
    }

    /// The node's listpack size in Redis (`lpBytes`).
    fn lp_bytes(&self) -> usize {
        use crate::storage::rdb::listpack::int_entry_size;
        self.lp_fixed + int_entry_size(self.live as i64) + int_entry_size(self.deleted as i64)
    }

    /// True when `fields` (field, value, ...) has the field names of the node's master
    /// entry, i.e. of its first entry (Redis's `STREAM_ITEM_FLAG_SAMEFIELDS`).
    fn same_fields(&self, fields: &[&[u8]]) -> bool {
        if self.data.is_empty() {
            return true;
        }
        let (first, _) = self.entry_at(0);
        first.nfields * 2 == fields.len()
            && first
                .items()
                .step_by(2)
                .zip(fields.iter().step_by(2))
                .all(|(a, b)| a == *b)
    }

    /// Appends an entry (`master` is the node's key), keeping `lp_fixed` in step.
    fn push_entry(&mut self, master: StreamId, id: StreamId, fields: &[&[u8]], deleted: bool) {
        use crate::storage::rdb::listpack::{entry_size, int_entry_size};
        let same = if self.data.is_empty() {
            // Header and end byte, then the master entry: field count, names, 0.
            self.lp_fixed = 7
                + int_entry_size((fields.len() / 2) as i64)
                + fields
                    .iter()
                    .step_by(2)
                    .map(|f| entry_size(f))
                    .sum::<usize>()
                + int_entry_size(0);
            true
        } else {
            self.same_fields(fields)
        };
        self.lp_fixed += lp_entry_size(master, id, fields, same);
        let d = &mut self.data;
        d.extend_from_slice(&id.ms.to_le_bytes());
        d.extend_from_slice(&id.seq.to_le_bytes());
        d.push(deleted as u8);
        put_varint(d, (fields.len() / 2) as u64);
        for f in fields {
            put_varint(d, f.len() as u64);
            d.extend_from_slice(f);
        }
        if deleted {
            self.deleted += 1;
        } else {
            self.live += 1;
        }
    }

    /// Decodes every entry (tombstones included).
    fn entries(&self) -> Vec<EntryRef<'_>> {
        let mut out = Vec::with_capacity((self.live + self.deleted) as usize);
        self.for_each(|e| {
            out.push(e);
            true
        });
        out
    }
}

/// A pending entry: who owns it, when it was last delivered, how many times.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    /// The owning consumer's name.
    pub consumer: Box<[u8]>,
    /// Last delivery, Unix ms.
    pub delivery_time: u64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Consumer {
    /// Last time the consumer was seen (read or claimed), Unix ms.
    pub seen_time: u64,
    /// The IDs this consumer owns in the group's PEL.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Group {
    /// Last delivered ID.
    pub last_id: StreamId,
    /// Logical read counter; `None` when unknown (Redis's -1).
    pub entries_read: Option<u64>,
    /// Pending entries, by ID.
    pub pel: BTreeMap<StreamId, Nack>,
    /// Consumers, by name (byte order, as Redis's radix tree).
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

impl Group {
    /// Creates `name` if missing (seen now); true when created.
    pub fn create_consumer(&mut self, name: &[u8], now: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.into(),
            Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Looks `name` up, creating it if needed, and refreshes its seen time.
    pub fn touch_consumer(&mut self, name: &[u8], now: u64) -> &mut Consumer {
        if !self.consumers.contains_key(name) {
            self.create_consumer(name, now);
        }
        let c = self.consumers.get_mut(name).expect("just created");
        c.seen_time = now;
        c
    }

    /// Removes a PEL entry from the group and its consumer; true when it was there.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Gives pending entry `id` to `consumer` (which must exist), creating the NACK with
    /// `now` when missing. Returns the NACK.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], now: u64) -> &mut Nack {
        let prev = self.pel.get(&id).map(|n| n.consumer.clone());
        match prev {
            Some(p) if &*p == consumer => {}
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p) {
                    c.pel.remove(&id);
                }
                self.pel.get_mut(&id).expect("present").consumer = consumer.into();
            }
            None => {
                self.pel.insert(
                    id,
                    Nack {
                        consumer: consumer.into(),
                        delivery_time: now,
                        delivery_count: 1,
                    },
                );
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
        self.pel.get_mut(&id).expect("present")
    }
}

/// How a trim limits the stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop entries below this ID.
    MinId(StreamId),
}

/// Why an append failed.
#[derive(Debug, PartialEq)]
pub enum AddError {
    /// The ID is not greater than the top item.
    NotGreater,
}

/// A stream.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    /// Live entries.
    pub length: u64,
    /// Last generated ID.
    pub last_id: StreamId,
    /// First live entry ID (0-0 when empty), as Redis records it.
    pub first_id: StreamId,
    /// Largest ID ever deleted by XDEL (or set by XSETID).
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name (byte order).
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Number of nodes (Redis's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Approximate heap bytes.
    pub fn heap_size(&self) -> usize {
        let nodes: usize = self.nodes.values().map(|n| n.data.capacity() + 48).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(k, g)| {
                k.len()
                    + 96
                    + g.pel.values().map(|n| n.consumer.len() + 64).sum::<usize>()
                    + g.consumers
                        .iter()
                        .map(|(k, c)| k.len() + 64 + c.pel.len() * 24)
                        .sum::<usize>()
            })
            .sum();
        nodes + groups
    }

    /// The ID an auto-generated append would use at `now_ms`, or `None` when the stream
    /// exhausted its IDs.
    fn next_auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.incr()
        }
    }

    /// Appends an entry. `id`: `None` = auto (`*`), `Some((id, true))` = explicit,
    /// `Some((ms-*, false))` = explicit ms with auto sequence.
    pub fn append(
        &mut self,
        fields: &[&[u8]],
        id: Option<(StreamId, bool)>,
        now_ms: u64,
        limits: NodeLimits,
    ) -> Result<StreamId, AddError> {
        let id = match id {
            None => self.next_auto_id(now_ms).ok_or(AddError::NotGreater)?,
            Some((id, true)) => id,
            Some((id, false)) => {
                if self.last_id.ms == id.ms {
                    if self.last_id.seq == u64::MAX {
                        return Err(AddError::NotGreater);
                    }
                    StreamId::new(id.ms, self.last_id.seq + 1)
                } else {
                    id
                }
            }
        };
        if id <= self.last_id {
            return Err(AddError::NotGreater);
        }
        let total: usize = fields.iter().map(|f| f.len()).sum();
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            limits.max_bytes
        };
        // `streamAppendItem`: a new node when the tail listpack plus the new field and
        // value bytes reach the byte limit, or it holds the entry limit (live + deleted).
        let need_new = match self.nodes.iter().next_back() {
            None => true,
            Some((_, n)) => {
                n.lp_bytes() + total >= max_bytes
                    || (limits.max_entries != 0
                        && (n.live + n.deleted) as usize >= limits.max_entries)
            }
        };
        if need_new {
            // The closed node keeps exactly its bytes.
            if let Some(last) = self.nodes.values_mut().next_back() {
                last.data.shrink_to_fit();
            }
            self.nodes.insert(id, Node::default());
        }
        let (&master, node) = self.nodes.iter_mut().next_back().expect("a node");
        node.push_entry(master, id, fields, false);
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// Live entries with `start <= id <= end`, ascending (or descending with `rev`),
    /// at most `count` of them (0 = all), handed to `f`.
    pub fn range<'a>(
        &'a self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
        mut f: impl FnMut(EntryRef<'a>),
    ) -> usize {
        if start > end {
            return 0;
        }
        let from = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let mut n = 0;
        let mut visit = |node: &'a Node, n: &mut usize| -> bool {
            let mut emit = |e: EntryRef<'a>, n: &mut usize| -> bool {
                if e.deleted || e.id < start || e.id > end {
                    return true;
                }
                f(e);
                *n += 1;
                count == 0 || *n < count
            };
            if rev {
                for e in node.entries().into_iter().rev() {
                    if !emit(e, n) {
                        return false;
                    }
                }
                true
            } else {
                node.for_each(|e| {
                    // Past the end: stop this node (and the caller stops at `end` too).
                    if e.id > end {
                        return false;
                    }
                    emit(e, n)
                })
            }
        };
        if rev {
            for (_, node) in self.nodes.range(from..=end).rev() {
                if !visit(node, &mut n) {
                    break;
                }
            }
        } else {
            for (_, node) in self.nodes.range(from..=end) {
                if !visit(node, &mut n) {
                    break;
                }
            }
        }
        n
    }

    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        let mut found = None;
        self.range(id, id, false, 1, |e| found = Some(e));
        found
    }

    /// True when live entry `id` exists.
    pub fn contains(&self, id: StreamId) -> bool {
        self.get(id).is_some()
    }

    /// The first (or last) live ID.
    pub fn edge_id(&self, first: bool) -> Option<StreamId> {
        let mut found = None;
        self.range(StreamId::MIN, StreamId::MAX, !first, 1, |e| {
            found = Some(e.id)
        });
        found
    }

    /// Last live ID, or `last_id`'s stand-in 0-0 when empty (Redis's
    /// `streamLastValidID`).
    pub fn last_valid_id(&self) -> StreamId {
        self.edge_id(false).unwrap_or(StreamId::MIN)
    }

    /// Deletes live entry `id` (a tombstone; the node goes when empty). True if deleted.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, _)) = self.nodes.range(..=id).next_back() else {
            return false;
        };
        let node = self.nodes.get_mut(&key).expect("present");
        let mut at = None;
        node.for_each(|e| {
            if e.id == id && !e.deleted {
                at = Some(e.flag_at);
            }
            at.is_none() && e.id < id
        });
        let Some(at) = at else {
            return false;
        };
        node.data[at] |= 1;
        node.live -= 1;
        node.deleted += 1;
        if node.live == 0 {
            self.nodes.remove(&key);
        }
        self.length -= 1;
        true
    }

    /// XDEL: deletes `ids`, updating `max_deleted_id` and `first_id`; returns the count.
    pub fn delete_ids(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first = false;
        for &id in ids {
            if self.delete(id) {
                if id == self.first_id {
                    first = true;
                }
                if id > self.max_deleted_id {
                    self.max_deleted_id = id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 {
            if self.length == 0 {
                self.first_id = StreamId::MIN;
            } else if first {
                self.first_id = self.edge_id(true).unwrap_or(StreamId::MIN);
            }
        }
        deleted
    }

    /// Trims like Redis's `streamTrim`: whole nodes first; with `approx` stops at the
    /// first node it cannot remove whole, otherwise marks entries deleted inside it.
    /// `limit` (0 = none) caps the entries removed. Returns the number removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how {
                if self.length <= max {
                    break;
                }
            }
            let Some((&key, node)) = self.nodes.iter().next() else {
                break;
            };
            let entries = node.live as u64;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => {
                    let last = node.entries().last().map_or(key, |e| e.id);
                    last < min
                }
            };
            if remove {
                self.nodes.remove(&key);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = self.nodes.get_mut(&key).expect("present");
            let marks: Vec<(usize, StreamId)> = node
                .entries()
                .into_iter()
                .filter(|e| !e.deleted)
                .map(|e| (e.flag_at, e.id))
                .collect();
            let mut from_node = 0u32;
            for (at, id) in marks {
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                node.data[at] |= 1;
                from_node += 1;
                self.length -= 1;
            }
            node.live -= from_node;
            node.deleted += from_node;
            deleted += from_node as u64;
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.edge_id(true).unwrap_or(StreamId::MIN);
        }
        deleted
    }

    /// The nodes in ID order, for serialization: each node's key (Redis's master ID)
    /// and its entries, tombstones included.
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, Vec<EntryRef<'_>>)> + '_ {
        self.nodes.iter().map(|(k, n)| (*k, n.entries()))
    }

    /// Appends a node read from a serialized stream: `key` is its master ID and
    /// `entries` are `(id, deleted, fields and values)`. The caller (the RDB decoder)
    /// has checked that `key` is the first entry's ID, that the IDs ascend and that they
    /// lie above every node already present; `length`, the IDs and the counters of the
    /// stream are its to set.
    pub fn push_loaded_node(&mut self, key: StreamId, entries: &[(StreamId, bool, Vec<&[u8]>)]) {
        let mut node = Node::default();
        for (id, deleted, fields) in entries {
            node.push_entry(key, *id, fields, *deleted);
        }
        node.data.shrink_to_fit();
        self.nodes.insert(key, node);
    }

    /// True when a tombstone may lie in `start..=end` (Redis's
    /// `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// The logical read counter of `id`, when it can be known (Redis's
    /// `streamEstimateDistanceFromFirstEverEntry`).
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// A group's lag, when known.
    pub fn group_lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.range_has_tombstones(g.last_id, StreamId::MAX) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.estimate_distance(g.last_id)
            .map(|r| self.entries_added.saturating_sub(r))
    }

    /// Advances `group`'s last ID to `id` (delivered now), updating its read counter.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let has_tomb = self.range_has_tombstones(id, StreamId::MAX);
        let est = self.estimate_distance(id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if id <= g.last_id {
            return;
        }
        match g.entries_read {
            Some(r) if !has_tomb => g.entries_read = Some(r + 1),
            _ if added != 0 => g.entries_read = est,
            _ => {}
        }
        g.last_id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &Stream) -> Vec<StreamId> {
        let mut v = Vec::new();
        s.range(StreamId::MIN, StreamId::MAX, false, 0, |e| v.push(e.id));
        v
    }

    #[test]
    fn append_range_delete_trim() {
        let mut s = Stream::new();
        let lim = NodeLimits {
            max_entries: 3,
            max_bytes: 4096,
        };
        for i in 1..=10 {
            let id = s
                .append(&[b"f", b"v"], Some((StreamId::new(i, 0), true)), 0, lim)
                .unwrap();
            assert_eq!(id, StreamId::new(i, 0));
        }
        assert_eq!(s.node_count(), 4);
        assert_eq!(
            s.append(&[b"f", b"v"], Some((StreamId::new(5, 0), true)), 0, lim),
            Err(AddError::NotGreater)
        );
        let mut rev = Vec::new();
        s.range(StreamId::new(3, 0), StreamId::new(7, 0), true, 2, |e| {
            rev.push(e.id.ms);
            assert_eq!(e.items().collect::<Vec<_>>(), vec![&b"f"[..], b"v"]);
        });
        assert_eq!(rev, vec![7, 6]);
        assert_eq!(
            s.delete_ids(&[StreamId::new(1, 0), StreamId::new(99, 0)]),
            1
        );
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert_eq!(s.trim(Trim::MaxLen(5), true, 0), 2);
        assert_eq!(s.length, 7);
        assert_eq!(s.trim(Trim::MaxLen(5), false, 0), 2);
        assert_eq!(ids(&s).first(), Some(&StreamId::new(6, 0)));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(8, 0)), false, 0), 2);
        assert_eq!(s.length, 3);
        assert_eq!(s.first_id, StreamId::new(8, 0));
    }

    #[test]
    fn id_arithmetic() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(StreamId::new(12, 3).format(), b"12-3".to_vec());
    }
}
