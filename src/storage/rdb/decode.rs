//! Value decoders: an RDB type byte and body to a [`Value`], as Redis 7.0's
//! `rdbLoadObject` loads them, including the conversions its loader makes:
//!
//! - strings become `int`/`embstr`/`raw` as `tryObjectEncoding` would;
//! - lists (1, 10, 14, 18) become quicklists with the configured node fill;
//! - sets (2, 11, 20) are intsets while all members are integers and there are at most
//!   `set-max-intset-entries`, hashtables otherwise;
//! - zsets 3 and 5 become listpacks when within both `zset-max-listpack-*` limits;
//!   the packed forms (12, 17) stay packed unless they have more than
//!   `zset-max-listpack-entries` elements (Redis checks only the count there);
//! - hashes 4 and the zipmap (9) follow both `hash-max-listpack-*` limits; the packed
//!   forms (13, 16) only the entry count, like Redis.
//!
//! Duplicates (set members, hash fields, zset members), NaN scores and empty
//! collections are errors. Streams (15, 19, 21) are read by [`super::stream`]; modules (6, 7)
//! are refused.

use super::listpack::Elem;
use super::{intset, listpack, ziplist, Error, Reader, Result};
use super::{
    QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN, TYPE_HASH, TYPE_HASH_LISTPACK, TYPE_HASH_ZIPLIST,
    TYPE_HASH_ZIPMAP, TYPE_LIST, TYPE_LIST_QUICKLIST, TYPE_LIST_QUICKLIST_2, TYPE_LIST_ZIPLIST,
    TYPE_MODULE, TYPE_MODULE_2, TYPE_SET, TYPE_SET_INTSET, TYPE_SET_LISTPACK,
    TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_2, TYPE_STREAM_LISTPACKS_3, TYPE_STRING,
    TYPE_ZSET, TYPE_ZSET_2, TYPE_ZSET_LISTPACK, TYPE_ZSET_ZIPLIST,
};
use crate::storage::list::End;
use crate::storage::{hash, zset, Hash, List, Set, Value, ZSet};

/// The conversion thresholds of the loading server.
#[derive(Clone, Copy, Debug)]
pub struct LoadLimits {
    /// `hash-max-listpack-entries` / `-value`.
    pub hash: hash::Limits,
    /// `zset-max-listpack-entries` / `-value`.
    pub zset: zset::Limits,
    /// `set-max-intset-entries`.
    pub max_intset: usize,
    /// `list-max-listpack-size`.
    pub list_fill: i64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            hash: hash::Limits::default(),
            zset: zset::Limits::default(),
            max_intset: 512,
            list_fill: -2,
        }
    }
}

/// No limit: builds a packed value whatever its content.
const UNLIMITED_HASH: hash::Limits = hash::Limits {
    max_entries: usize::MAX,
    max_value: usize::MAX,
};

/// Loads the body of a value of RDB type `t` (`rdbLoadObject`).
pub fn load_object(t: u8, r: &mut Reader, lim: &LoadLimits) -> Result<Value> {
    match t {
        TYPE_STRING => Ok(Value::from_bytes(&r.string("string value")?)),
        TYPE_LIST => {
            let n = r.count("list length", 1)?;
            let mut l = List::new();
            for _ in 0..n {
                l.push(End::Right, &r.string("list element")?, lim.list_fill);
            }
            Ok(Value::List(Box::new(l)))
        }
        TYPE_LIST_ZIPLIST => {
            let blob = r.string("list ziplist")?;
            let items = ziplist::parse(&blob)?;
            list_from(items.iter().map(|e| e.to_vec()), lim)
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.count("quicklist node count", 2)?;
            let mut l = List::new();
            for _ in 0..nodes {
                let container = if t == TYPE_LIST_QUICKLIST_2 {
                    r.len("quicklist node container")?
                } else {
                    QUICKLIST_NODE_PACKED
                };
                let blob = r.string("quicklist node")?;
                match container {
                    QUICKLIST_NODE_PLAIN => l.push(End::Right, &blob, lim.list_fill),
                    QUICKLIST_NODE_PACKED => {
                        let items = if t == TYPE_LIST_QUICKLIST_2 {
                            listpack::parse(&blob)?
                        } else {
                            ziplist::parse(&blob)?
                        };
                        for e in items {
                            l.push(End::Right, &e.to_vec(), lim.list_fill);
                        }
                    }
                    c => return Err(Error(format!("quicklist node container {c} unknown"))),
                }
            }
            if l.is_empty() {
                return Err("empty list".into());
            }
            Ok(Value::List(Box::new(l)))
        }
        TYPE_SET => {
            let n = r.count("set size", 1)?;
            let mut s = Set::new_ints();
            for _ in 0..n {
                let m = r.string("set member")?;
                if !s.add(&m, lim.max_intset) {
                    return Err("duplicate set member".into());
                }
            }
            Ok(Value::Set(Box::new(s)))
        }
        TYPE_SET_INTSET => {
            let blob = r.string("intset")?;
            let members = intset::parse(&blob)?;
            if members.is_empty() {
                return Err("empty intset".into());
            }
            let mut s = Set::new_ints();
            let mut buf = itoa::Buffer::new();
            for m in &members {
                s.add(buf.format(*m).as_bytes(), usize::MAX);
            }
            if members.len() > lim.max_intset {
                s.convert_to_table();
            }
            Ok(Value::Set(Box::new(s)))
        }
        TYPE_SET_LISTPACK => {
            let blob = r.string("set listpack")?;
            let items = listpack::parse(&blob)?;
            if items.is_empty() {
                return Err("empty set listpack".into());
            }
            let mut s = Set::new_ints();
            for e in items {
                if !s.add(&e.to_vec(), lim.max_intset) {
                    return Err("duplicate set member".into());
                }
            }
            Ok(Value::Set(Box::new(s)))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.count("zset size", 2)?;
            let mut pairs: Vec<(Vec<u8>, f64)> = Vec::with_capacity(n);
            for _ in 0..n {
                let m = r.string("zset member")?;
                let s = if t == TYPE_ZSET_2 {
                    r.double_bin("zset score")?
                } else {
                    r.double_str("zset score")?
                };
                if s.is_nan() {
                    return Err("zset score is NaN".into());
                }
                pairs.push((m, s));
            }
            check_unique(pairs.iter().map(|p| &p.0[..]), "zset member")?;
            Ok(Value::ZSet(Box::new(ZSet::from_pairs(pairs, lim.zset))))
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = r.string("zset listpack")?;
            let items = if t == TYPE_ZSET_LISTPACK {
                listpack::parse(&blob)?
            } else {
                ziplist::parse(&blob)?
            };
            if items.is_empty() || items.len() % 2 != 0 {
                return Err("zset listpack with an odd or zero number of entries".into());
            }
            let mut pairs = Vec::with_capacity(items.len() / 2);
            for c in items.chunks_exact(2) {
                let score = match c[1] {
                    Elem::Int(v) => v as f64,
                    Elem::Str(s) => parse_score(s)?,
                };
                pairs.push((c[0].to_vec(), score));
            }
            check_unique(pairs.iter().map(|p| &p.0[..]), "zset member")?;
            let n = pairs.len();
            let unlimited = zset::Limits {
                max_entries: usize::MAX,
                max_value: usize::MAX,
            };
            let mut z = ZSet::from_pairs(pairs, unlimited);
            if n > lim.zset.max_entries {
                z.convert_to_skiplist();
            }
            Ok(Value::ZSet(Box::new(z)))
        }
        TYPE_HASH => {
            let n = r.count("hash size", 2)?;
            let mut h = Hash::new();
            for _ in 0..n {
                let f = r.string("hash field")?;
                let v = r.string("hash value")?;
                if !h.set(&f, &v, lim.hash) {
                    return Err("duplicate hash field".into());
                }
            }
            Ok(Value::from_hash(h))
        }
        TYPE_HASH_ZIPMAP => {
            let blob = r.string("hash zipmap")?;
            let pairs = ziplist::parse_zipmap(&blob)?;
            if pairs.is_empty() {
                return Err("empty zipmap".into());
            }
            let mut h = Hash::new();
            let mut maxlen = 0;
            for (f, v) in &pairs {
                maxlen = maxlen.max(f.len()).max(v.len());
                if !h.set(f, v, UNLIMITED_HASH) {
                    return Err("duplicate hash field".into());
                }
            }
            if h.len() > lim.hash.max_entries || maxlen > lim.hash.max_value {
                h.convert_to_table();
            }
            Ok(Value::from_hash(h))
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = r.string("hash listpack")?;
            let items = if t == TYPE_HASH_LISTPACK {
                listpack::parse(&blob)?
            } else {
                ziplist::parse(&blob)?
            };
            if items.is_empty() || items.len() % 2 != 0 {
                return Err("hash listpack with an odd or zero number of entries".into());
            }
            let mut h = Hash::new();
            for c in items.chunks_exact(2) {
                if !h.set(&c[0].to_vec(), &c[1].to_vec(), UNLIMITED_HASH) {
                    return Err("duplicate hash field".into());
                }
            }
            if h.len() > lim.hash.max_entries {
                h.convert_to_table();
            }
            Ok(Value::from_hash(h))
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            super::stream::load(t, r)
        }
        TYPE_MODULE | TYPE_MODULE_2 => Err("module values are not supported".into()),
        _ => Err(Error(format!("unknown RDB value type {t}"))),
    }
}

/// A list built from elements.
fn list_from(items: impl Iterator<Item = Vec<u8>>, lim: &LoadLimits) -> Result<Value> {
    let mut l = List::new();
    for e in items {
        l.push(End::Right, &e, lim.list_fill);
    }
    if l.is_empty() {
        return Err("empty list".into());
    }
    Ok(Value::List(Box::new(l)))
}

/// Parses a score stored as a listpack string (what `zzlGetScore` reads with `strtod`).
fn parse_score(s: &[u8]) -> Result<f64> {
    let v = std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or_else(|| Error("zset score is not a number".into()))?;
    if v.is_nan() {
        return Err("zset score is NaN".into());
    }
    Ok(v)
}

/// Errors when an item occurs twice.
fn check_unique<'a>(items: impl Iterator<Item = &'a [u8]>, what: &str) -> Result<()> {
    let mut v: Vec<&[u8]> = items.collect();
    v.sort_unstable();
    if v.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error(format!("duplicate {what}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{dump_payload, load_payload, put_len, verify_payload};
    use super::*;

    fn round_trip(v: &Value) -> Value {
        let p = dump_payload(v, true);
        let body = verify_payload(&p, false).expect("valid footer");
        load_payload(body, &LoadLimits::default()).expect("loads")
    }

    #[test]
    fn values_round_trip() {
        let lim = LoadLimits::default();
        let mut vals = vec![
            Value::from_bytes(b"123"),
            Value::from_bytes(b"-9223372036854775808"),
            Value::from_bytes(b"hello"),
            Value::from_bytes(&[b'x'; 1000]),
        ];
        let mut l = List::new();
        for i in 0..5000 {
            l.push(End::Right, format!("element-{i}").as_bytes(), -2);
        }
        vals.push(Value::List(Box::new(l)));
        let mut s = Set::new_ints();
        for i in 0..100 {
            s.add(format!("{}", i * 1000).as_bytes(), 512);
        }
        vals.push(Value::Set(Box::new(s.clone())));
        s.add(b"abc", 512);
        vals.push(Value::Set(Box::new(s)));
        let mut h = Hash::new();
        h.set(b"a", b"1", lim.hash);
        h.set(b"b", b"two", lim.hash);
        vals.push(Value::from_hash(h.clone()));
        h.set(b"long", &[b'v'; 100], lim.hash);
        vals.push(Value::from_hash(h));
        let pairs = vec![
            (b"a".to_vec(), 1.5),
            (b"b".to_vec(), f64::INFINITY),
            (b"c".to_vec(), f64::NEG_INFINITY),
            (b"d".to_vec(), -0.1),
        ];
        vals.push(Value::ZSet(Box::new(ZSet::from_pairs(
            pairs.clone(),
            lim.zset,
        ))));
        let tiny = zset::Limits {
            max_entries: 1,
            max_value: 64,
        };
        vals.push(Value::ZSet(Box::new(ZSet::from_pairs(pairs, tiny))));
        let n = vals.len();
        for (i, v) in vals.iter().enumerate() {
            let back = round_trip(v);
            assert_eq!(&back, v);
            // A small skiplist set is loaded as a listpack, as Redis's loader does.
            let want = if i == n - 1 { "listpack" } else { v.encoding() };
            assert_eq!(back.encoding(), want);
        }
    }

    #[test]
    fn old_forms_load() {
        let lim = LoadLimits::default();
        // A ziplist list.
        let zl = ziplist::build(&[b"a", b"1", b"bb"]);
        let mut body = vec![TYPE_LIST_ZIPLIST];
        put_len(&mut body, zl.len() as u64);
        body.extend_from_slice(&zl);
        let v = load_payload(&body, &lim).unwrap();
        let Value::List(l) = v else { panic!() };
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"1", b"bb"]);
        // A zset with string scores.
        let mut body = vec![TYPE_ZSET, 2, 1, b'm', 3, b'1', b'.', b'5', 1, b'n', 255];
        let v = load_payload(&body, &lim).unwrap();
        let Value::ZSet(z) = v else { panic!() };
        assert_eq!(z.score(b"m"), Some(1.5));
        assert_eq!(z.score(b"n"), Some(f64::NEG_INFINITY));
        // Duplicates are refused.
        body = vec![TYPE_SET, 2, 1, b'a', 1, b'a'];
        assert!(load_payload(&body, &lim).is_err());
        body = vec![TYPE_HASH, 2, 1, b'a', 1, b'1', 1, b'a', 1, b'2'];
        assert!(load_payload(&body, &lim).is_err());
        // Empty collections are refused.
        assert!(load_payload(&[TYPE_SET, 0], &lim).is_err());
        // Huge counts are refused without allocating.
        let mut body = vec![TYPE_LIST];
        put_len(&mut body, u64::MAX);
        assert!(load_payload(&body, &lim).is_err());
    }

    #[test]
    fn corrupt_payloads_never_panic() {
        let lim = LoadLimits::default();
        let mut h = Hash::new();
        for i in 0..10 {
            h.set(
                format!("f{i}").as_bytes(),
                format!("v{i}").as_bytes(),
                lim.hash,
            );
        }
        let v = Value::from_hash(h);
        let p = dump_payload(&v, false);
        let body = &p[..p.len() - 10];
        for i in 0..body.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut c = body.to_vec();
                c[i] ^= x;
                let _ = load_payload(&c, &lim);
            }
        }
        for n in 0..body.len() {
            assert!(load_payload(&body[..n], &lim).is_err());
        }
    }
}
