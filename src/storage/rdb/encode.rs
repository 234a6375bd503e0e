//! Value encoders: a [`Value`] as Redis 7.0's `rdbSaveObjectType` + `rdbSaveObject`
//! write it.
//!
//! | value                 | RDB type                      |
//! |-----------------------|-------------------------------|
//! | string                | 0 (int-encoded when it is a canonical integer that fits 32 bits, LZF-compressed when longer than 20 bytes and it saves space) |
//! | list                  | 18, quicklist 2: listpack nodes sized by `list-max-listpack-size` |
//! | set, intset           | 11, the intset bytes          |
//! | set, hashtable        | 2                             |
//! | zset, listpack        | 17, the listpack bytes        |
//! | zset, skiplist        | 5, binary double scores, highest element first |
//! | hash, listpack        | 16, the listpack bytes        |
//! | hash, hashtable       | 4                             |
//! | stream                | 19, listpack nodes, groups, PELs, consumers ([`super::stream`]) |

use super::{intset, listpack, lzf, put_len};
use super::{
    TYPE_HASH, TYPE_HASH_LISTPACK, TYPE_LIST_QUICKLIST_2, TYPE_SET, TYPE_SET_INTSET,
    TYPE_STREAM_LISTPACKS_2, TYPE_STRING, TYPE_ZSET_2, TYPE_ZSET_LISTPACK,
};
use crate::protocol::reply::parse_i64;
use crate::storage::hash::Hash;
use crate::storage::set::{IntSet, Set};
use crate::storage::zset::{d2string, ZSet};
use crate::storage::{Value, ValueRef};

/// Bytes a listpack node of a written list may take (Redis's default fill, -2 = 8 KiB).
pub const LIST_NODE_BYTES: usize = 8192;

/// The RDB type byte of `v`.
pub fn type_byte(v: &Value) -> u8 {
    match v {
        Value::Int(_) | Value::Small { .. } | Value::Str(_) | Value::Raw(_) => TYPE_STRING,
        Value::List(_) => TYPE_LIST_QUICKLIST_2,
        Value::Set(s) => match **s {
            Set::Ints(_) => TYPE_SET_INTSET,
            Set::Table(_) => TYPE_SET,
        },
        Value::ZSet(z) => match **z {
            ZSet::Packed(_) => TYPE_ZSET_LISTPACK,
            ZSet::Skip(_) => TYPE_ZSET_2,
        },
        Value::Hash(h) => hash_type_byte(h),
        Value::Stream(_) => TYPE_STREAM_LISTPACKS_2,
    }
}

fn hash_type_byte(h: &Hash) -> u8 {
    match h {
        Hash::Packed(_) => TYPE_HASH_LISTPACK,
        Hash::Table(_) => TYPE_HASH,
    }
}

/// [`type_byte`] of a value seen through its entry.
pub fn type_byte_ref(v: ValueRef<'_>) -> u8 {
    match v {
        ValueRef::Int(_) | ValueRef::Str(_) => TYPE_STRING,
        ValueRef::Hash(h) => hash_type_byte(h),
        ValueRef::Boxed(v) => type_byte(v),
    }
}

/// [`save_object`] of a value seen through its entry.
pub fn save_object_ref(v: ValueRef<'_>, out: &mut Vec<u8>, compress: bool) {
    match v {
        ValueRef::Int(i) => save_object(&Value::Int(i), out, compress),
        ValueRef::Str(s) => put_string(out, s, compress),
        ValueRef::Hash(h) => save_hash(h, out, compress),
        ValueRef::Boxed(v) => save_object(v, out, compress),
    }
}

/// Appends an integer in Redis's `rdbEncodeInteger` form when it fits 32 bits.
fn put_int_enc(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        out.push(0xc0);
        out.push(b as u8);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xc2);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends a string as `rdbSaveRawString` does: integer-encoded when it is at most 11
/// bytes and a canonical integer fitting 32 bits; LZF-compressed when `compress`, longer
/// than 20 bytes, and at least 4 bytes shorter compressed; raw otherwise.
pub fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if put_int_enc(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(z) = lzf::compress(s, s.len() - 4) {
            out.push(0xc3);
            put_len(out, z.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&z);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends the body of `v` (without its type byte), as `rdbSaveObject` does.
pub fn save_object(v: &Value, out: &mut Vec<u8>, compress: bool) {
    match v {
        Value::Int(i) => {
            if !put_int_enc(out, *i) {
                let mut b = itoa::Buffer::new();
                let s = b.format(*i).as_bytes();
                put_len(out, s.len() as u64);
                out.extend_from_slice(s);
            }
        }
        Value::Small { .. } | Value::Str(_) | Value::Raw(_) => {
            v.with_str(|s| put_string(out, s, compress));
        }
        Value::List(l) => {
            // Listpack nodes of at most LIST_NODE_BYTES (an element bigger than that gets
            // a node of its own).
            let mut nodes: Vec<Vec<u8>> = Vec::new();
            let mut w = listpack::Writer::new();
            for e in l.iter() {
                if !w.is_empty() && w.bytes() + e.len() + 11 > LIST_NODE_BYTES {
                    nodes.push(std::mem::take(&mut w).finish());
                }
                w.push(e);
            }
            if !w.is_empty() {
                nodes.push(w.finish());
            }
            put_len(out, nodes.len() as u64);
            for n in &nodes {
                put_len(out, super::QUICKLIST_NODE_PACKED);
                put_string(out, n, compress);
            }
        }
        Value::Set(s) => match &**s {
            Set::Ints(is) => {
                let (members, width): (Vec<i64>, usize) = match is {
                    IntSet::W16(v) => (v.iter().map(|&x| x as i64).collect(), 2),
                    IntSet::W32(v) => (v.iter().map(|&x| x as i64).collect(), 4),
                    IntSet::W64(v) => (v.clone(), 8),
                };
                put_string(out, &intset::encode_width(&members, width), compress);
            }
            Set::Table(_) => {
                put_len(out, s.len() as u64);
                for m in s.iter() {
                    m.with_bytes(|b| put_string(out, b, compress));
                }
            }
        },
        Value::ZSet(z) => match &**z {
            ZSet::Packed(_) => {
                let mut w = listpack::Writer::new();
                let mut sbuf = Vec::with_capacity(32);
                for (m, sc) in z.iter() {
                    w.push(m);
                    sbuf.clear();
                    d2string(sc, &mut sbuf);
                    w.push(&sbuf);
                }
                put_string(out, &w.finish(), compress);
            }
            ZSet::Skip(_) => {
                put_len(out, z.len() as u64);
                let all: Vec<(&[u8], f64)> = z.iter().collect();
                for (m, sc) in all.iter().rev() {
                    put_string(out, m, compress);
                    out.extend_from_slice(&sc.to_le_bytes());
                }
            }
        },
        Value::Hash(h) => save_hash(h, out, compress),
        Value::Stream(st) => super::stream::save(st, out, compress),
    }
}

fn save_hash(h: &Hash, out: &mut Vec<u8>, compress: bool) {
    match h {
        Hash::Packed(_) => {
            let mut w = listpack::Writer::new();
            for (f, v) in h.iter() {
                w.push(f);
                w.push(v);
            }
            put_string(out, &w.finish(), compress);
        }
        Hash::Table(_) => {
            put_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                put_string(out, f, compress);
                put_string(out, v, compress);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_like_redis() {
        let mut o = Vec::new();
        put_string(&mut o, b"12", false);
        assert_eq!(o, vec![0xc0, 12]);
        o.clear();
        put_string(&mut o, b"012", false);
        assert_eq!(o, vec![3, b'0', b'1', b'2']);
        o.clear();
        put_string(&mut o, b"-32768", false);
        assert_eq!(o, vec![0xc1, 0x00, 0x80]);
        o.clear();
        put_string(&mut o, b"4294967296", false);
        assert_eq!(o[0], 10);
        o.clear();
        put_string(&mut o, &[b'a'; 30], true);
        assert_eq!(o[0], 0xc3);
        o.clear();
        put_string(&mut o, &[b'a'; 30], false);
        assert_eq!(o[0], 30);
    }
}
