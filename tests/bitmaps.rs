//! Integration tests of the bitmap commands against the real binary: the `redis` crate's
//! view of replies, big offsets and `proto-max-bulk-len`, keyspace events and WATCH, and
//! the atomicity of cross-shard BITOP (with sources on several shards it must never see
//! half of a MULTI that changes them together).

mod common;

use common::*;
use libellule::shard::key_shard;
use redis::Commands;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// `n` key names with the given prefix on pairwise different shards (of 3).
fn keys_on_distinct_shards(prefix: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut used = HashSet::new();
    for i in 0.. {
        let k = format!("{prefix}{i}");
        if used.insert(key_shard(k.as_bytes(), 3)) {
            out.push(k);
            if out.len() == n {
                break;
            }
        }
    }
    out
}

#[test]
fn redis_crate_round_trip() {
    for io in ["1", "3"] {
        let server = Server::start(&["--io_threads", io]);
        let mut con = server.redis();
        let old: bool = con.setbit("b", 10, true).unwrap();
        assert!(!old);
        let old: bool = con.setbit("b", 10, true).unwrap();
        assert!(old);
        let v: bool = con.getbit("b", 10).unwrap();
        assert!(v);
        let raw: Vec<u8> = con.get("b").unwrap();
        assert_eq!(raw, vec![0x00, 0x20]);
        let n: i64 = con.bitcount("b").unwrap();
        assert_eq!(n, 1);
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg("b")
            .query(&mut con)
            .unwrap();
        assert_eq!(enc, "raw");
        let _: () = con.set("c", b"\xff\x0f".as_slice()).unwrap();
        let len: i64 = redis::cmd("BITOP")
            .arg("AND")
            .arg("d")
            .arg("b")
            .arg("c")
            .query(&mut con)
            .unwrap();
        assert_eq!(len, 2);
        let raw: Vec<u8> = con.get("d").unwrap();
        assert_eq!(raw, vec![0x00, 0x00]);
        let pos: i64 = redis::cmd("BITPOS")
            .arg("c")
            .arg(0)
            .query(&mut con)
            .unwrap();
        assert_eq!(pos, 8);
        let r: Vec<Option<i64>> = redis::cmd("BITFIELD")
            .arg("f")
            .arg("OVERFLOW")
            .arg("FAIL")
            .arg("INCRBY")
            .arg("u4")
            .arg("#1")
            .arg(20)
            .arg("INCRBY")
            .arg("i4")
            .arg(0)
            .arg(7)
            .query(&mut con)
            .unwrap();
        assert_eq!(r, vec![None, Some(7)]);
    }
}

#[test]
fn offsets_follow_proto_max_bulk_len() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd_str("SETBIT k 4294967296 1"),
        Reply::err("ERR bit offset is not an integer or out of range")
    );
    assert_eq!(c.cmd_str("GETBIT k 4294967295"), Reply::Int(0));
    assert_eq!(c.cmd_str("CONFIG SET proto-max-bulk-len 1mb"), Reply::ok());
    assert_eq!(
        c.cmd_str("SETBIT k 8388608 1"),
        Reply::err("ERR bit offset is not an integer or out of range")
    );
    assert_eq!(c.cmd_str("SETBIT k 8388607 1"), Reply::Int(0));
    assert_eq!(c.cmd_str("STRLEN k"), Reply::Int(1 << 20));
    assert_eq!(c.cmd_str("BITCOUNT k"), Reply::Int(1));
    assert_eq!(c.cmd_str("BITPOS k 1"), Reply::Int(8388607));
    assert_eq!(
        c.cmd_str("BITFIELD k GET u8 #1048576"),
        Reply::err("ERR bit offset is not an integer or out of range")
    );
}

/// Reads one pmessage and returns (channel, key).
fn event(sub: &mut RawConn) -> (String, String) {
    let m = sub.read_reply();
    let a = m.as_array();
    (
        String::from_utf8_lossy(a[2].as_bytes()).into_owned(),
        String::from_utf8_lossy(a[3].as_bytes()).into_owned(),
    )
}

#[test]
fn keyspace_events_and_watch() {
    let s = Server::start(&["--io_threads", "3"]);
    let mut sub = s.conn();
    let mut c = s.conn();
    assert_eq!(
        c.cmd_str("CONFIG SET notify-keyspace-events KEA"),
        Reply::ok()
    );
    sub.cmd_str("PSUBSCRIBE __keyevent@0__:*");
    c.cmd_str("SETBIT b 3 1");
    c.cmd_str("SETBIT b 3 1"); // unchanged: no event
    c.cmd_str("BITFIELD b SET u8 0 16"); // unchanged: no event
    c.cmd_str("BITFIELD b SET u8 0 17");
    c.cmd_str("BITOP NOT {b}d b");
    c.cmd_str("BITOP AND {b}d nokey");
    c.cmd_str("SET done 1");
    // Events are ordered per shard: "b" and "{b}d" share a shard (hash tag), so their
    // events come in command order; "done" lives on another shard (io_threads 3) and
    // its event may arrive before theirs (docs/decisions.md, keyspace notifications).
    let start = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 5 && start.elapsed() < Duration::from_secs(10) {
        seen.push(event(&mut sub));
    }
    let done = ("__keyevent@0__:set".to_string(), "done".to_string());
    assert!(seen.contains(&done), "{seen:?}");
    seen.retain(|e| *e != done);
    let want: Vec<(String, String)> = [
        ("setbit", "b"),
        ("setbit", "b"),
        ("set", "{b}d"),
        ("del", "{b}d"),
    ]
    .iter()
    .map(|(e, k)| (format!("__keyevent@0__:{e}"), k.to_string()))
    .collect();
    assert_eq!(seen, want);

    // WATCH: a SETBIT from another client aborts the transaction.
    let mut w = s.conn();
    w.cmd_str("WATCH b");
    c.cmd_str("SETBIT b 100 1");
    w.cmd_str("MULTI");
    w.cmd_str("GET b");
    assert_eq!(w.cmd_str("EXEC"), Reply::Array(None));
}

#[test]
fn cross_shard_bitop_is_atomic() {
    let s = Server::start(&["--io_threads", "3"]);
    let keys = keys_on_distinct_shards("bm", 3);
    let (a, b, dst) = (&keys[0], &keys[1], &keys[2]);
    let mut c = s.conn();
    c.cmd_str(&format!("SET {a} \"\\x00\""));
    c.cmd_str(&format!("SET {b} \"\\x00\""));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let (a, b) = (a.clone(), b.clone());
        let mut w = s.conn();
        std::thread::spawn(move || {
            let mut i: u8 = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i = i.wrapping_add(1);
                w.cmd_str("MULTI");
                w.send(&[b"SET", a.as_bytes(), &[i]]);
                w.read_reply();
                w.send(&[b"SET", b.as_bytes(), &[i]]);
                w.read_reply();
                w.cmd_str("EXEC");
            }
        })
    };
    for _ in 0..500 {
        assert_eq!(
            c.cmd_str(&format!("BITOP XOR {dst} {a} {b}")),
            Reply::Int(1)
        );
        // Equal sources XOR to zero unless BITOP saw half of a MULTI.
        assert_eq!(c.cmd_str(&format!("GET {dst}")), Reply::bulk([0u8]));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}
