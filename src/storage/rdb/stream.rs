//! The stream value codec: RDB types 15 (`STREAM_LISTPACKS`, Redis 5.0 to 6.2), 19
//! (`STREAM_LISTPACKS_2`, Redis 7.0, what [`save`] writes) and 21 (`STREAM_LISTPACKS_3`,
//! Redis 7.2: consumers also carry an active time), as `rdbSaveObject` /
//! `rdbLoadObject` lay them out:
//!
//! ```text
//! node count, then per node: master ID (16-byte string, ms and seq big-endian)
//!                            and the node's listpack (a string)
//! length, last ID (ms, seq)
//! [19, 21] first ID (ms, seq), max deleted entry ID (ms, seq), entries added
//! group count, then per group: name, last ID (ms, seq), [19, 21] entries read (-1 as
//!   the 64-bit length 2^64-1), global PEL count, per PEL entry: ID (16 bytes
//!   big-endian), delivery time (ms, i64 LE), delivery count; consumer count, per
//!   consumer: name, seen time (i64 LE), [21] active time (i64 LE), its PEL count and
//!   IDs (16 bytes each, owned entries of the global PEL)
//! ```
//!
//! A node's listpack is Redis's (`streamAppendItem`): a master entry `count, deleted,
//! field count, field names..., 0`, then per entry `flags, ms delta, seq delta,
//! [field count, names...] values..., lp-count`, the names omitted when they are the
//! master's (`SAMEFIELDS`, flag 2; flag 1 marks a deleted entry). The writer builds
//! exactly that from Libellule's nodes (same node boundaries, master entry = the node's
//! first entry, tombstones kept), so a stream's DUMP is Redis's byte for byte.
//!
//! The reader validates everything Redis's deep sanitization does
//! (`streamValidateListpackIntegrity` and the loader's checks) and more, so that a
//! loaded stream is always consistent: node keys ascend, the first entry of a node is
//! its master ID with the master's fields, IDs ascend across the stream and none
//! exceeds the last ID, the master counters match the entries' flags, the stream length
//! is the number of live entries, the first ID is the first live entry's, entries added
//! is at least the length, every PEL entry has exactly one consumer. Any failure is an
//! [`Error`], never a panic.

use super::listpack::{self, Elem};
use super::{encode::put_string, put_len, Error, Reader, Result};
use super::{TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_3};
use crate::protocol::reply::parse_i64;
use crate::storage::stream::{Consumer, Group, Nack, Stream, StreamId};
use crate::storage::Value;
use std::collections::{BTreeMap, BTreeSet};

/// `STREAM_ITEM_FLAG_DELETED`
const FLAG_DELETED: i64 = 1;
/// `STREAM_ITEM_FLAG_SAMEFIELDS`
const FLAG_SAMEFIELDS: i64 = 2;

/// An ID as a rax key: 16 bytes, ms then seq, big-endian.
fn id_bytes(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn id_from_bytes(b: &[u8]) -> StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&b[..8]);
    seq.copy_from_slice(&b[8..16]);
    StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
}

/// The listpack of one node, as Redis holds it.
pub fn node_listpack(key: StreamId, entries: &[crate::storage::stream::EntryRef<'_>]) -> Vec<u8> {
    let mut w = listpack::Writer::new();
    let live = entries.iter().filter(|e| !e.is_deleted()).count();
    w.push_int(live as i64);
    w.push_int((entries.len() - live) as i64);
    let master: Vec<&[u8]> = entries
        .first()
        .map(|e| e.items().step_by(2).collect())
        .unwrap_or_default();
    w.push_int(master.len() as i64);
    for f in &master {
        w.push(f);
    }
    w.push_int(0);
    for e in entries {
        let same =
            e.len() == master.len() && e.items().step_by(2).zip(&master).all(|(a, b)| a == *b);
        let flags =
            if e.is_deleted() { FLAG_DELETED } else { 0 } | if same { FLAG_SAMEFIELDS } else { 0 };
        w.push_int(flags);
        w.push_int(e.id.ms.wrapping_sub(key.ms) as i64);
        w.push_int(e.id.seq.wrapping_sub(key.seq) as i64);
        if !same {
            w.push_int(e.len() as i64);
        }
        for (i, item) in e.items().enumerate() {
            if i % 2 == 1 || !same {
                w.push(item);
            }
        }
        let lp_count = e.len() + 3 + if same { 0 } else { e.len() + 1 };
        w.push_int(lp_count as i64);
    }
    w.finish()
}

/// Appends a stream's body (type 19) as `rdbSaveObject` writes it.
pub fn save(s: &Stream, out: &mut Vec<u8>, compress: bool) {
    save_as(s, out, compress, super::TYPE_STREAM_LISTPACKS_2);
}

/// Writes the body in the layout of type `t` (15, 19 or 21; the tests use the other
/// two to check the reader: 15 drops the 7.0 counters, 21 adds the consumers' active
/// time, written as their seen time).
fn save_as(s: &Stream, out: &mut Vec<u8>, compress: bool, t: u8) {
    put_len(out, s.node_count() as u64);
    for (key, entries) in s.nodes() {
        put_string(out, &id_bytes(key), compress);
        put_string(out, &node_listpack(key, &entries), compress);
    }
    put_len(out, s.length);
    put_len(out, s.last_id.ms);
    put_len(out, s.last_id.seq);
    if t != TYPE_STREAM_LISTPACKS {
        for id in [s.first_id, s.max_deleted_id] {
            put_len(out, id.ms);
            put_len(out, id.seq);
        }
        put_len(out, s.entries_added);
    }
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name, compress);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        if t != TYPE_STREAM_LISTPACKS {
            put_len(out, g.entries_read.unwrap_or(u64::MAX));
        }
        put_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            out.extend_from_slice(&id_bytes(*id));
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            put_len(out, n.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (name, c) in &g.consumers {
            put_string(out, name, compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            if t == TYPE_STREAM_LISTPACKS_3 {
                out.extend_from_slice(&c.seen_time.to_le_bytes());
            }
            put_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id_bytes(*id));
            }
        }
    }
}

/// `lpGetIntegerIfValid`: an integer entry, or a string holding a canonical integer.
fn int_of(e: &Elem, what: &str) -> Result<i64> {
    match e {
        Elem::Int(v) => Ok(*v),
        Elem::Str(s) => {
            parse_i64(s).ok_or_else(|| Error(format!("stream listpack: {what} is not an integer")))
        }
    }
}

/// A count from a listpack: an integer in `0..=max`.
fn count_of(e: &Elem, what: &str, max: usize) -> Result<usize> {
    let v = int_of(e, what)?;
    if v < 0 || v as u64 > max as u64 {
        return Err(Error(format!("stream listpack: {what} {v} out of range")));
    }
    Ok(v as usize)
}

/// One decoded node: `(id, deleted, fields and values)` per entry.
type NodeEntries<'a> = Vec<(StreamId, bool, Vec<&'a [u8]>)>;

/// Parses and checks one node's listpack items (`key` is the node's master ID).
fn parse_node<'a>(
    key: StreamId,
    items: &'a [Elem<'a>],
    owned: &'a [Vec<u8>],
) -> Result<NodeEntries<'a>> {
    let n = items.len();
    let mut p = 0usize;
    let mut next = |what: &str| -> Result<usize> {
        if p >= n {
            return Err(Error(format!("stream listpack: truncated at the {what}")));
        }
        p += 1;
        Ok(p - 1)
    };
    let live = count_of(&items[next("entry count")?], "entry count", n)?;
    let deleted = count_of(&items[next("deleted count")?], "deleted count", n)?;
    let master_fields = count_of(&items[next("master field count")?], "master field count", n)?;
    let mut master: Vec<&[u8]> = Vec::with_capacity(master_fields);
    for _ in 0..master_fields {
        master.push(&owned[next("master field")?]);
    }
    if int_of(&items[next("master terminator")?], "master terminator")? != 0 {
        return Err("stream listpack: master entry terminator is not 0".into());
    }
    let total = live + deleted;
    if total == 0 {
        return Err("stream listpack: node without entries".into());
    }
    // Every entry takes at least four items: bounded by the listpack itself.
    if total > n / 4 {
        return Err("stream listpack: more entries announced than present".into());
    }
    let mut out: NodeEntries = Vec::with_capacity(total);
    let mut seen_deleted = 0;
    for i in 0..total {
        let flags = int_of(&items[next("entry flags")?], "entry flags")?;
        let ms_delta = int_of(&items[next("entry ms delta")?], "entry ms delta")?;
        let seq_delta = int_of(&items[next("entry seq delta")?], "entry seq delta")?;
        let id = StreamId::new(
            key.ms.wrapping_add(ms_delta as u64),
            key.seq.wrapping_add(seq_delta as u64),
        );
        let same = flags & FLAG_SAMEFIELDS != 0;
        let nf = if same {
            master_fields
        } else {
            count_of(&items[next("entry field count")?], "entry field count", n)?
        };
        if nf == 0 {
            return Err("stream listpack: entry without fields".into());
        }
        let mut fields: Vec<&[u8]> = Vec::with_capacity(2 * nf.min(n));
        if same {
            for f in &master {
                fields.push(f);
                fields.push(&owned[next("entry value")?]);
            }
        } else {
            // Field, value, field, value... (`streamAppendItem` interleaves them).
            for _ in 0..nf {
                fields.push(&owned[next("entry field")?]);
                fields.push(&owned[next("entry value")?]);
            }
        }
        let lp_count = int_of(&items[next("entry lp-count")?], "entry lp-count")?;
        let want = nf as i64 + 3 + if same { 0 } else { nf as i64 + 1 };
        if lp_count != want {
            return Err("stream listpack: entry lp-count mismatch".into());
        }
        if i == 0 {
            if id != key {
                return Err("stream listpack: first entry is not the node's master ID".into());
            }
            if !same && fields.iter().step_by(2).ne(master.iter()) {
                return Err(
                    "stream listpack: master entry fields differ from the first entry's".into(),
                );
            }
        } else if id <= out[i - 1].0 {
            return Err("stream listpack: entry IDs do not ascend".into());
        }
        let is_deleted = flags & FLAG_DELETED != 0;
        seen_deleted += is_deleted as usize;
        out.push((id, is_deleted, fields));
    }
    if p != n {
        return Err("stream listpack: items after the last entry".into());
    }
    if seen_deleted != deleted {
        return Err("stream listpack: deleted count does not match the entries".into());
    }
    Ok(out)
}

/// Reads a 16-byte raw ID.
fn raw_id(r: &mut Reader, what: &str) -> Result<StreamId> {
    Ok(id_from_bytes(r.take(16, what)?))
}

/// Reads a millisecond time (`rdbLoadMillisecondTime`: i64 little-endian).
fn ms_time(r: &mut Reader, what: &str) -> Result<u64> {
    let d = r.take(8, what)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(d);
    Ok(u64::from_le_bytes(a))
}

/// Reads a count of items taking at least `min_bytes` each (zero allowed).
fn count(r: &mut Reader, what: &str, min_bytes: usize) -> Result<usize> {
    let n = r.len(what)?;
    if n > (r.remaining() / min_bytes) as u64 {
        return Err(Error(format!(
            "{what}: {n} cannot fit in the {} bytes left",
            r.remaining()
        )));
    }
    Ok(n as usize)
}

/// Loads a stream body of type `t` (15, 19 or 21).
pub fn load(t: u8, r: &mut Reader) -> Result<Value> {
    let mut s = Stream::new();
    // A node takes at least a 17-byte key string and a listpack string.
    let nodes = count(r, "stream node count", 18)?;
    let mut last_entry: Option<StreamId> = None;
    let mut first_live: Option<StreamId> = None;
    let mut live_total = 0u64;
    for _ in 0..nodes {
        let key = r.string("stream node key")?;
        if key.len() != 16 {
            return Err("stream node key is not the size of a stream ID".into());
        }
        let key = id_from_bytes(&key);
        let lp = r.string("stream node listpack")?;
        let items =
            listpack::parse(&lp).map_err(|e| Error(format!("stream node listpack: {e}")))?;
        let owned: Vec<Vec<u8>> = items.iter().map(|e| e.to_vec()).collect();
        let entries = parse_node(key, &items, &owned)?;
        if last_entry.is_some_and(|l| key <= l) {
            return Err("stream nodes out of order".into());
        }
        last_entry = entries.last().map(|e| e.0);
        for e in entries.iter().filter(|e| !e.1) {
            first_live.get_or_insert(e.0);
            live_total += 1;
        }
        s.push_loaded_node(key, &entries);
    }
    s.length = r.len("stream length")?;
    if s.length != live_total {
        return Err(Error(format!(
            "stream length {} but {live_total} live entries",
            s.length
        )));
    }
    s.last_id = StreamId::new(r.len("stream last ID")?, r.len("stream last ID")?);
    if last_entry.is_some_and(|l| l > s.last_id) {
        return Err("stream entry above the stream's last ID".into());
    }
    let first = first_live.unwrap_or(StreamId::MIN);
    if t == TYPE_STREAM_LISTPACKS {
        s.first_id = first;
        s.max_deleted_id = StreamId::MIN;
        s.entries_added = s.length;
    } else {
        s.first_id = StreamId::new(r.len("stream first ID")?, r.len("stream first ID")?);
        s.max_deleted_id = StreamId::new(
            r.len("stream max deleted ID")?,
            r.len("stream max deleted ID")?,
        );
        s.entries_added = r.len("stream entries added")?;
        if s.first_id != first {
            return Err("stream first ID is not the first entry's".into());
        }
        if s.entries_added < s.length {
            return Err("stream entries added below its length".into());
        }
    }
    // A group takes at least 6 bytes (empty name, ms, seq, read counter, two counts).
    let groups = count(r, "stream group count", 6)?;
    for _ in 0..groups {
        let name = r.string("stream group name")?;
        let last_id = StreamId::new(r.len("group last ID")?, r.len("group last ID")?);
        let entries_read = if t == TYPE_STREAM_LISTPACKS {
            s.estimate_distance(last_id)
        } else {
            match r.len("group entries read")? {
                u64::MAX => None,
                v if v > i64::MAX as u64 => return Err("group entries read is negative".into()),
                v => Some(v),
            }
        };
        if s.groups.contains_key(&name[..]) {
            return Err("duplicate stream consumer group".into());
        }
        // ID, delivery time, delivery count: at least 25 bytes.
        let pel_len = count(r, "group PEL size", 25)?;
        let mut pel: BTreeMap<StreamId, (u64, u64, Option<usize>)> = BTreeMap::new();
        for _ in 0..pel_len {
            let id = raw_id(r, "group PEL ID")?;
            let time = ms_time(r, "PEL delivery time")?;
            let n = r.len("PEL delivery count")?;
            if pel.insert(id, (time, n, None)).is_some() {
                return Err("duplicate group PEL entry".into());
            }
        }
        // Name, seen time, PEL count: at least 10 bytes (18 with the active time).
        let min = if t == TYPE_STREAM_LISTPACKS_3 { 18 } else { 10 };
        let nconsumers = count(r, "group consumer count", min)?;
        let mut consumers: Vec<(Vec<u8>, Consumer)> = Vec::with_capacity(nconsumers);
        for ci in 0..nconsumers {
            let cname = r.string("consumer name")?;
            let seen_time = ms_time(r, "consumer seen time")?;
            if t == TYPE_STREAM_LISTPACKS_3 {
                // Redis 7.2's active time: 7.0 has only the seen time.
                ms_time(r, "consumer active time")?;
            }
            let n = count(r, "consumer PEL size", 16)?;
            let mut cpel = BTreeSet::new();
            for _ in 0..n {
                let id = raw_id(r, "consumer PEL ID")?;
                match pel.get_mut(&id) {
                    None => return Err("consumer PEL entry not in the group PEL".into()),
                    Some((_, _, Some(_))) => return Err("PEL entry owned twice".into()),
                    Some((_, _, owner)) => *owner = Some(ci),
                }
                cpel.insert(id);
            }
            consumers.push((
                cname,
                Consumer {
                    seen_time,
                    pel: cpel,
                },
            ));
        }
        let mut g = Group {
            last_id,
            entries_read,
            ..Group::default()
        };
        for (id, (delivery_time, delivery_count, owner)) in pel {
            let Some(ci) = owner else {
                return Err("group PEL entry without consumer".into());
            };
            let consumer = consumers[ci].0.clone().into_boxed_slice();
            g.pel.insert(
                id,
                Nack {
                    consumer,
                    delivery_time,
                    delivery_count,
                },
            );
        }
        for (cname, c) in consumers {
            if g.consumers.insert(cname.into_boxed_slice(), c).is_some() {
                return Err("duplicate stream consumer".into());
            }
        }
        s.groups.insert(name.into_boxed_slice(), g);
    }
    Ok(Value::Stream(Box::new(s)))
}

#[cfg(test)]
mod tests {
    use super::super::{dump_payload, load_payload, verify_payload, LoadLimits};
    use super::super::{TYPE_STREAM_LISTPACKS_2, TYPE_STREAM_LISTPACKS_3};
    use super::*;
    use crate::storage::stream::{NodeLimits, Trim};

    /// redis-server 7.0.15, `rdbcompression no`, `stream-node-max-entries 3`:
    /// XADD t 1-0..5-0 name n<i> v <i>; XADD t 6-0 other x; XDEL t 2-0 6-0;
    /// XGROUP CREATE t g 0; XREADGROUP GROUP g c1 COUNT 2 STREAMS t >;
    /// XGROUP CREATECONSUMER t g c2; XCLAIM t g c2 0 3-0; DUMP t.
    const REDIS_DUMP: &str = "130210000000000000000100000000000000004042420000001800020101010201846e616d65058176020001020100010001826e310301010501030101010001826e320302010501020102010001826e330303010501ff10000000000000000400000000000000004048480000001900020101010201846e616d65058176020001020100010001826e340304010501020101010001826e3503050105010101020100010101856f74686572068178020601ff0406000100060006010167030081ffffffffffffffff020000000000000001000000000000000019843017a2010000010000000000000003000000000000000084843017a2010000020202633119843017a2010000010000000000000001000000000000000002633284843017a201000001000000000000000300000000000000000a009a93d4a610d50f2b";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn stream_of(v: &Value) -> &Stream {
        match v {
            Value::Stream(s) => s,
            _ => panic!("not a stream"),
        }
    }

    fn body(v: &Value, t: u8) -> Vec<u8> {
        let mut out = vec![t];
        save_as(stream_of(v), &mut out, false, t);
        out
    }

    #[test]
    fn redis_dump_loads_and_reencodes_byte_for_byte() {
        let p = unhex(REDIS_DUMP);
        let b = verify_payload(&p, false).expect("footer");
        let v = load_payload(b, &LoadLimits::default()).expect("loads");
        let s = stream_of(&v);
        assert_eq!(s.length, 4);
        assert_eq!(s.node_count(), 2);
        assert_eq!(s.last_id, StreamId::new(6, 0));
        assert_eq!(s.max_deleted_id, StreamId::new(6, 0));
        assert_eq!(s.first_id, StreamId::new(1, 0));
        assert_eq!(s.entries_added, 6);
        let g = &s.groups[&b"g"[..]];
        assert_eq!(g.entries_read, None);
        assert_eq!(g.pel.len(), 2);
        assert_eq!(&*g.pel[&StreamId::new(3, 0)].consumer, b"c2");
        assert_eq!(g.pel[&StreamId::new(3, 0)].delivery_count, 2);
        assert!(s.get(StreamId::new(2, 0)).is_none());
        assert_eq!(
            s.get(StreamId::new(6, 0)).map(|e| e.id),
            None,
            "6-0 was deleted"
        );
        assert_eq!(dump_payload(&v, false), p);
    }

    fn sample() -> Value {
        let mut s = Stream::new();
        let lim = NodeLimits {
            max_entries: 4,
            max_bytes: 4096,
        };
        for i in 1..=23u64 {
            let v = format!("value-{i}");
            let fields: Vec<&[u8]> = if i % 5 == 0 {
                vec![b"other", v.as_bytes(), b"n", b"-7"]
            } else {
                vec![b"f", v.as_bytes()]
            };
            s.append(&fields, Some((StreamId::new(i * 1000, i), true)), 0, lim)
                .unwrap();
        }
        s.append(
            &[b"f", b"x"],
            Some((StreamId::new(23000, u64::MAX), true)),
            0,
            lim,
        )
        .unwrap();
        s.append(&[b"f", b"y"], None, 30000, lim).unwrap();
        s.delete_ids(&[StreamId::new(2000, 2), StreamId::new(5000, 5)]);
        s.trim(Trim::MaxLen(20), false, 0);
        let mut g = Group {
            last_id: StreamId::new(9000, 9),
            entries_read: Some(7),
            ..Group::default()
        };
        g.create_consumer(b"alice", 111);
        g.create_consumer(b"bob", 222);
        g.create_consumer(b"idle", 333);
        g.assign(StreamId::new(6000, 6), b"alice", 444);
        g.assign(StreamId::new(7000, 7), b"bob", 555);
        g.assign(StreamId::new(1, 1), b"bob", 666);
        s.groups.insert(b"g1"[..].into(), g);
        s.groups.insert(b"empty"[..].into(), Group::default());
        Value::Stream(Box::new(s))
    }

    #[test]
    fn round_trip_all_types() {
        let v = sample();
        let lim = LoadLimits::default();
        for t in [
            TYPE_STREAM_LISTPACKS,
            TYPE_STREAM_LISTPACKS_2,
            TYPE_STREAM_LISTPACKS_3,
        ] {
            let b = body(&v, t);
            let back = load_payload(&b, &lim).unwrap_or_else(|e| panic!("type {t}: {e}"));
            if t == TYPE_STREAM_LISTPACKS {
                // 5.0-era payloads lack the counters: derived as Redis derives them.
                let s = stream_of(&back);
                assert_eq!(s.entries_added, s.length);
                assert_eq!(s.max_deleted_id, StreamId::MIN);
                assert_eq!(s.nodes().count(), stream_of(&v).nodes().count());
            } else {
                assert_eq!(back, v, "type {t}");
            }
        }
        for compress in [false, true] {
            let p = dump_payload(&v, compress);
            let back = load_payload(verify_payload(&p, false).unwrap(), &lim).unwrap();
            assert_eq!(back, v);
        }
        // The empty stream with a group (XGROUP CREATE ... MKSTREAM).
        let mut s = Stream::new();
        s.groups.insert(b"g"[..].into(), Group::default());
        let v = Value::Stream(Box::new(s));
        assert_eq!(load_payload(&body(&v, 19), &lim).unwrap(), v);
    }

    /// Loading either fails or gives a stream that re-encodes to itself.
    fn check(b: &[u8]) -> bool {
        let lim = LoadLimits::default();
        match load_payload(b, &lim) {
            Ok(v) => {
                let again = load_payload(&body(&v, TYPE_STREAM_LISTPACKS_2), &lim).unwrap();
                assert_eq!(again, v);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn corrupt_bodies_never_panic() {
        let p = unhex(REDIS_DUMP);
        let b = &p[..p.len() - 10];
        for i in 0..b.len() {
            for x in [0x01u8, 0x02, 0x80, 0xff] {
                let mut c = b.to_vec();
                c[i] ^= x;
                check(&c);
            }
        }
        for n in 0..b.len() {
            assert!(
                load_payload(&b[..n], &LoadLimits::default()).is_err(),
                "{n}"
            );
        }
        let v = sample();
        let b = body(&v, TYPE_STREAM_LISTPACKS_3);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] = c[i].wrapping_add(1);
            check(&c);
        }
    }

    #[test]
    fn inconsistent_streams_are_refused() {
        let lim = LoadLimits::default();
        let v = sample();
        let bad = |f: &dyn Fn(&mut Stream)| {
            let mut v2 = v.clone();
            if let Value::Stream(s) = &mut v2 {
                f(s);
            }
            let r = load_payload(&body(&v2, TYPE_STREAM_LISTPACKS_2), &lim);
            assert!(r.is_err(), "accepted");
        };
        bad(&|s| s.length += 1);
        bad(&|s| s.last_id = StreamId::new(5, 0));
        bad(&|s| s.first_id = StreamId::new(1, 0));
        bad(&|s| s.entries_added = 3);
        bad(&|s| {
            let g = s.groups.get_mut(&b"g1"[..]).unwrap();
            g.consumers.get_mut(&b"alice"[..]).unwrap().pel.clear();
        });
        bad(&|s| {
            let g = s.groups.get_mut(&b"g1"[..]).unwrap();
            let id = StreamId::new(6000, 6);
            g.consumers.get_mut(&b"bob"[..]).unwrap().pel.insert(id);
        });
        bad(&|s| {
            let g = s.groups.get_mut(&b"g1"[..]).unwrap();
            g.consumers
                .get_mut(&b"idle"[..])
                .unwrap()
                .pel
                .insert(StreamId::new(9, 9));
        });
    }
}
