//! The file-level RDB format, version 10 (Redis 7.0): the `REDIS0010` header, AUX fields,
//! SELECTDB, RESIZEDB, expiry, idle and frequency opcodes, EOF and the CRC64 trailer.
//!
//! Values themselves are encoded and decoded by [`crate::storage::rdb`] (shared with
//! DUMP/RESTORE). This module writes the framing around them ([`header`],
//! [`write_entry`], [`trailer`]) and parses a file one item at a time ([`parse_item`])
//! over whatever part of the file is in memory, so the loader can stream it.

use crate::storage::rdb::{self, put_len, LoadLimits, Reader};
use crate::storage::{Entry, Value};

/// `RDB_OPCODE_FUNCTION2` (Redis 7.0 function libraries).
pub const OP_FUNCTION2: u8 = 245;
/// `RDB_OPCODE_FUNCTION` (pre-GA functions, Redis 7.0 refuses them too).
pub const OP_FUNCTION_PRE_GA: u8 = 246;
/// `RDB_OPCODE_MODULE_AUX`.
pub const OP_MODULE_AUX: u8 = 247;
/// `RDB_OPCODE_IDLE`: LRU idle time in seconds of the next key.
pub const OP_IDLE: u8 = 248;
/// `RDB_OPCODE_FREQ`: LFU counter of the next key.
pub const OP_FREQ: u8 = 249;
/// `RDB_OPCODE_AUX`: a name/value pair of metadata.
pub const OP_AUX: u8 = 250;
/// `RDB_OPCODE_RESIZEDB`: sizes of the hash tables of the current database.
pub const OP_RESIZEDB: u8 = 251;
/// `RDB_OPCODE_EXPIRETIME_MS`: absolute expiry of the next key, Unix ms, u64 LE.
pub const OP_EXPIRETIME_MS: u8 = 252;
/// `RDB_OPCODE_EXPIRETIME`: absolute expiry of the next key, Unix seconds, u32 LE.
pub const OP_EXPIRETIME: u8 = 253;
/// `RDB_OPCODE_SELECTDB`.
pub const OP_SELECTDB: u8 = 254;
/// `RDB_OPCODE_EOF`.
pub const OP_EOF: u8 = 255;

/// Size of the header: `REDIS` and four version digits.
pub const HEADER_LEN: usize = 9;

/// What the snapshot records about the saving server (the AUX fields).
#[derive(Clone, Debug)]
pub struct AuxInfo {
    /// Unix seconds at the start of the save.
    pub ctime: u64,
    /// Memory in use at the start of the save.
    pub used_mem: u64,
}

fn put_aux(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(OP_AUX);
    rdb::encode::put_string(out, name.as_bytes(), false);
    rdb::encode::put_string(out, value, false);
}

/// The bytes that open a snapshot: `REDIS0010` and the AUX fields redis-server 7.0
/// writes for a plain SAVE (`redis-ver`, `redis-bits`, `ctime`, `used-mem`, `aof-base`).
pub fn header(aux: &AuxInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(format!("REDIS{:04}", rdb::RDB_VERSION).as_bytes());
    put_aux(
        &mut out,
        "redis-ver",
        crate::REDIS_COMPAT_VERSION.as_bytes(),
    );
    put_aux(&mut out, "redis-bits", b"64");
    put_aux(&mut out, "ctime", aux.ctime.to_string().as_bytes());
    put_aux(&mut out, "used-mem", aux.used_mem.to_string().as_bytes());
    put_aux(&mut out, "aof-base", b"0");
    out
}

/// A SELECTDB opcode for database `db`.
pub fn select_db(out: &mut Vec<u8>, db: usize) {
    out.push(OP_SELECTDB);
    put_len(out, db as u64);
}

/// How the idle time / access frequency of keys is written: as Redis writes them, only
/// when the eviction policy uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recency {
    /// Neither (the `noeviction` and `volatile-ttl`/`random` policies).
    None,
    /// `RDB_OPCODE_IDLE` (LRU policies), with the LRU clock at the cut.
    Idle(u32),
    /// `RDB_OPCODE_FREQ` (LFU policies), with the LRU clock at the cut.
    Freq(u32),
}

/// Appends one key: its expiry (`EXPIRETIME_MS`), idle/freq opcode when `recency` asks,
/// the type byte, the key and the value. Returns true (every value type is encodable).
pub fn write_entry(
    out: &mut Vec<u8>,
    key: &[u8],
    e: &Entry,
    compress: bool,
    recency: Recency,
) -> bool {
    let expire_at = e.expire_at();
    if expire_at != 0 {
        out.push(OP_EXPIRETIME_MS);
        out.extend_from_slice(&expire_at.to_le_bytes());
    }
    match recency {
        Recency::None => {}
        Recency::Idle(clock) => {
            out.push(OP_IDLE);
            put_len(out, clock.saturating_sub(e.access) as u64);
        }
        Recency::Freq(clock) => {
            out.push(OP_FREQ);
            out.push(e.freq_at(clock));
        }
    }
    let v = e.value();
    out.push(rdb::encode::type_byte_ref(v));
    rdb::encode::put_string(out, key, compress);
    rdb::encode::save_object_ref(v, out, compress);
    true
}

/// The closing bytes: EOF (the caller appends the CRC64 of everything before it).
pub fn trailer() -> [u8; 1] {
    [OP_EOF]
}

/// One item of a snapshot file, as [`parse_item`] returns it.
#[derive(Debug)]
pub enum Item {
    /// An AUX field.
    Aux(Vec<u8>, Vec<u8>),
    /// SELECTDB.
    SelectDb(u64),
    /// RESIZEDB (hash table sizes; a hint).
    ResizeDb(u64, u64),
    /// A key and its value with the opcodes that preceded it.
    Key {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Value,
        /// Absolute expiry in Unix ms, 0 = none.
        expire_at: u64,
        /// `RDB_OPCODE_IDLE` seconds, if given.
        idle: Option<u64>,
        /// `RDB_OPCODE_FREQ` counter, if given.
        freq: Option<u8>,
    },
    /// EOF: what follows is the checksum (versions >= 5).
    Eof,
}

/// Parses the header; returns the RDB version.
pub fn parse_header(r: &mut Reader) -> rdb::Result<u32> {
    let h = r.take(HEADER_LEN, "header")?;
    if &h[..5] != b"REDIS" {
        return Err("Wrong signature trying to load DB from file".into());
    }
    let ver = std::str::from_utf8(&h[5..])
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| rdb::Error("invalid RDB version".into()))?;
    if ver < 1 || ver > rdb::RDB_VERSION as u32 {
        return Err(format!("Can't handle RDB format version {ver}").into());
    }
    Ok(ver)
}

/// Parses one item (opcodes before a key belong to its item). An error on a short input
/// may only mean that more of the file is needed: the caller retries with more bytes,
/// and reports it only at the end of the file.
pub fn parse_item(r: &mut Reader, lim: &LoadLimits) -> rdb::Result<Item> {
    let mut expire_at = 0u64;
    let mut idle = None;
    let mut freq = None;
    loop {
        let t = r.u8("opcode")?;
        match t {
            OP_EXPIRETIME_MS => {
                let b = r.take(8, "expire time")?;
                expire_at = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            }
            OP_EXPIRETIME => {
                let b = r.take(4, "expire time")?;
                expire_at = u32::from_le_bytes(b.try_into().expect("4 bytes")) as u64 * 1000;
            }
            OP_IDLE => idle = Some(r.len("idle time")?),
            OP_FREQ => freq = Some(r.u8("frequency")?),
            OP_AUX => {
                let k = r.string("aux field name")?;
                let v = r.string("aux field value")?;
                return Ok(Item::Aux(k, v));
            }
            OP_RESIZEDB => {
                let a = r.len("resizedb size")?;
                let b = r.len("resizedb expires size")?;
                return Ok(Item::ResizeDb(a, b));
            }
            OP_SELECTDB => return Ok(Item::SelectDb(r.len("selectdb index")?)),
            OP_EOF => return Ok(Item::Eof),
            OP_MODULE_AUX => {
                return Err("module auxiliary data (a module is needed to load it)".into())
            }
            OP_FUNCTION2 | OP_FUNCTION_PRE_GA => {
                return Err("function libraries (FUNCTION is not supported)".into())
            }
            _ => {
                let key = r.string("key")?;
                let value = rdb::load_object(t, r, lim)?;
                return Ok(Item::Key {
                    key,
                    value,
                    expire_at,
                    idle,
                    freq,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = header(&AuxInfo {
            ctime: 1_700_000_000,
            used_mem: 12345,
        });
        assert!(h.starts_with(b"REDIS0010"));
        let mut r = Reader::new(&h);
        assert_eq!(parse_header(&mut r).unwrap(), 10);
        let lim = LoadLimits::default();
        let mut names = Vec::new();
        while r.remaining() > 0 {
            match parse_item(&mut r, &lim).unwrap() {
                Item::Aux(k, v) => names.push((k, v)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(names[0], (b"redis-ver".to_vec(), b"7.0.15".to_vec()));
        assert_eq!(names[2], (b"ctime".to_vec(), b"1700000000".to_vec()));
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn entries_round_trip() {
        let node = crate::storage::entry::Node::new(
            b"k",
            Value::from_bytes(b"hello"),
            1_900_000_000_000,
            0,
            5,
        );
        let mut out = Vec::new();
        select_db(&mut out, 3);
        assert!(write_entry(
            &mut out,
            b"k",
            node.entry(),
            true,
            Recency::Freq(0)
        ));
        out.push(OP_EOF);
        let mut r = Reader::new(&out);
        let lim = LoadLimits::default();
        assert!(matches!(
            parse_item(&mut r, &lim).unwrap(),
            Item::SelectDb(3)
        ));
        match parse_item(&mut r, &lim).unwrap() {
            Item::Key {
                key,
                value,
                expire_at,
                freq,
                idle,
            } => {
                assert_eq!(key, b"k");
                assert_eq!(value, Value::from_bytes(b"hello"));
                assert_eq!(expire_at, 1_900_000_000_000);
                assert_eq!(freq, Some(5));
                assert_eq!(idle, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_item(&mut r, &lim).unwrap(), Item::Eof));
        // Every truncation is an error, never a panic.
        for n in 0..out.len() - 1 {
            let mut r = Reader::new(&out[..n]);
            let mut ok = true;
            while r.remaining() > 0 && ok {
                ok = parse_item(&mut r, &lim).is_ok();
            }
        }
    }
}
