//! Integration tests of the HyperLogLog commands against the real binary: accuracy over
//! large cardinalities, the exact header layout, sparse-to-dense promotion, PFCOUNT and
//! PFMERGE across shards (including atomicity against concurrent MULTIs), keyspace events
//! and WATCH.

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
fn accuracy_and_layout() {
    for io in ["1", "3"] {
        let s = Server::start(&["--io_threads", io]);
        let mut con = s.redis();
        let _: bool = con.pfadd("h", "x").unwrap();
        let raw: Vec<u8> = con.get("h").unwrap();
        assert_eq!(&raw[..5], b"HYLL\x01", "new sketches are sparse");
        assert_eq!(raw[15] & 0x80, 0x80, "PFADD invalidates the cached count");
        let n: i64 = con.pfcount("h").unwrap();
        assert_eq!(n, 1);
        let raw: Vec<u8> = con.get("h").unwrap();
        assert_eq!(
            &raw[8..16],
            &[1, 0, 0, 0, 0, 0, 0, 0],
            "PFCOUNT caches the count"
        );
        let mut added = 0;
        for chunk in 0..50 {
            let els: Vec<String> = (0..2000)
                .map(|i| format!("e{}", chunk * 2000 + i))
                .collect();
            let _: bool = con.pfadd("big", els).unwrap();
            added += 2000;
            let c: i64 = con.pfcount("big").unwrap();
            let err = (c as f64 - added as f64).abs() / added as f64;
            assert!(err < 0.03, "{c} for {added}");
        }
        let enc: String = redis::cmd("PFDEBUG")
            .arg("ENCODING")
            .arg("big")
            .query(&mut con)
            .unwrap();
        assert_eq!(enc, "dense");
        let raw: Vec<u8> = con.get("big").unwrap();
        assert_eq!(raw.len(), 16 + 12288);
        let regs: Vec<i64> = redis::cmd("PFDEBUG")
            .arg("GETREG")
            .arg("big")
            .query(&mut con)
            .unwrap();
        assert_eq!(regs.len(), 16384);
        assert!(regs.iter().all(|r| (0..=63).contains(r)));
        let empty = regs.iter().filter(|r| **r == 0).count();
        assert!(empty < 300, "{empty} empty registers after 100000 elements");
    }
}

#[test]
fn sparse_promotion_follows_config() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("CONFIG SET hll-sparse-max-bytes 60"), Reply::ok());
    let mut promoted_at = None;
    for i in 0..200 {
        c.cmd_str(&format!("PFADD p e{i}"));
        let enc = c.cmd_str("PFDEBUG ENCODING p");
        if enc == Reply::simple("dense") {
            promoted_at = Some(i);
            break;
        }
        assert!(c.cmd_str("STRLEN p").as_int() <= 60);
    }
    assert!(promoted_at.is_some(), "never promoted");
    assert_eq!(c.cmd_str("STRLEN p"), Reply::Int(16 + 12288));
}

#[test]
fn cross_shard_count_and_merge() {
    let s = Server::start(&["--io_threads", "3"]);
    let keys = keys_on_distinct_shards("hl", 3);
    let mut c = s.conn();
    for (i, k) in keys.iter().enumerate() {
        let els: Vec<String> = (0..1000).map(|j| format!("{}", i * 500 + j)).collect();
        c.cmd_str(&format!("PFADD {k} {}", els.join(" ")));
    }
    let union = c.cmd_str(&format!("PFCOUNT {} {} {}", keys[0], keys[1], keys[2]));
    let u = union.as_int();
    assert!((1940..=2060).contains(&u), "{u}");
    assert_eq!(
        c.cmd_str(&format!("PFMERGE {} {} {}", keys[0], keys[1], keys[2])),
        Reply::ok()
    );
    assert_eq!(c.cmd_str(&format!("PFCOUNT {}", keys[0])), union);
    c.cmd_str("SET str hello");
    assert_eq!(
        c.cmd_str(&format!("PFCOUNT {} str", keys[1])),
        Reply::err("WRONGTYPE Key is not a valid HyperLogLog string value.")
    );
}

#[test]
fn cross_shard_pfmerge_is_atomic() {
    use libellule::storage::hyperloglog::pattern;
    let s = Server::start(&["--io_threads", "3"]);
    let keys = keys_on_distinct_shards("am", 3);
    let (a, b, dst) = (keys[0].clone(), keys[1].clone(), keys[2].clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let (a, b) = (a.clone(), b.clone());
        let mut w = s.conn();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let (e, f, g) = (format!("e{i}"), format!("f{i}"), format!("g{i}"));
                let regs: HashSet<usize> = [&e, &f, &g]
                    .iter()
                    .map(|x| pattern(x.as_bytes()).0)
                    .collect();
                if regs.len() != 3 {
                    continue; // keep the union's count exactly 3
                }
                // Consistent states: a = {e}, b = {e, f, g}: the union counts 3.
                w.cmd_str("MULTI");
                w.cmd_str(&format!("DEL {a} {b}"));
                w.cmd_str(&format!("PFADD {a} {e}"));
                w.cmd_str(&format!("PFADD {b} {e} {f} {g}"));
                w.cmd_str("EXEC");
            }
        })
    };
    let mut c = s.conn();
    let mut seen = 0;
    for _ in 0..300 {
        c.cmd_str(&format!("DEL {dst}"));
        assert_eq!(c.cmd_str(&format!("PFMERGE {dst} {a} {b}")), Reply::ok());
        let n = c.cmd_str(&format!("PFCOUNT {dst}")).as_int();
        if n == 0 {
            continue; // before the writer's first transaction
        }
        seen += 1;
        assert_eq!(n, 3, "PFMERGE saw half of a transaction");
    }
    assert!(seen > 0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
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
    c.cmd_str("PFADD h a");
    c.cmd_str("PFADD h a"); // no register changed: no event
    c.cmd_str("PFCOUNT h"); // caches the count: no event
    c.cmd_str("PFMERGE {h}other h");
    c.cmd_str("SET done 1");
    // Events of commands that ran on different shards may arrive in either order:
    // collect three and compare them as a set (an extra event would take a place).
    let start = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 3 && start.elapsed() < Duration::from_secs(10) {
        let m = sub.read_reply();
        let a = m.as_array();
        seen.push((
            String::from_utf8_lossy(a[2].as_bytes()).into_owned(),
            String::from_utf8_lossy(a[3].as_bytes()).into_owned(),
        ));
    }
    let mut want: Vec<(String, String)> = [("pfadd", "h"), ("pfadd", "{h}other"), ("set", "done")]
        .iter()
        .map(|(e, k)| (format!("__keyevent@0__:{e}"), k.to_string()))
        .collect();
    seen.sort();
    want.sort();
    assert_eq!(seen, want);

    // PFADD from another client aborts a WATCHing transaction.
    let mut w = s.conn();
    w.cmd_str("WATCH h");
    c.cmd_str("PFADD h zzz");
    w.cmd_str("MULTI");
    w.cmd_str("PFCOUNT h");
    assert_eq!(w.cmd_str("EXEC"), Reply::Array(None));
}
