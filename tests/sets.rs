//! Integration tests of the set commands against the real binary: the `redis` crate's
//! view of replies, big sets (encoding conversions, SPOP draining, SRANDMEMBER
//! distribution), SSCAN guarantees under concurrent changes, and the atomicity of the
//! cross-shard coordinators (SMOVE and the *STORE forms with keys on different shards
//! must never expose a partial result).

mod common;

use common::*;
use libellule::shard::key_shard;
use redis::Commands;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shards used by the multi-shard tests.
const SHARDS: usize = 3;

/// `n` key names with the given prefix that live on pairwise different shards.
fn keys_on_distinct_shards(prefix: &str, n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut used = HashSet::new();
    for i in 0.. {
        let k = format!("{prefix}{i}");
        if used.insert(key_shard(k.as_bytes(), SHARDS)) {
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
    let server = Server::start(&["--io_threads", "1"]);
    let mut con = server.redis();
    let added: i64 = con.sadd("s", &["b", "a", "c", "a"]).unwrap();
    assert_eq!(added, 3);
    let members: HashSet<String> = con.smembers("s").unwrap();
    assert_eq!(
        members,
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    );
    let is: bool = con.sismember("s", "b").unwrap();
    assert!(is);
    let card: i64 = con.scard("s").unwrap();
    assert_eq!(card, 3);
    let added: i64 = con.sadd("n", &[30, -4, 7]).unwrap();
    assert_eq!(added, 3);
    let sorted: Vec<i64> = con.smembers("n").unwrap();
    assert_eq!(
        sorted,
        vec![-4, 7, 30],
        "an intset lists its members in order"
    );
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("n")
        .query(&mut con)
        .unwrap();
    assert_eq!(enc, "intset");
    let t: String = redis::cmd("TYPE").arg("n").query(&mut con).unwrap();
    assert_eq!(t, "set");
    redis::cmd("SET")
        .arg("str")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
    let err = con.sadd::<_, _, i64>("str", "x").unwrap_err();
    assert!(
        err.to_string().contains("WRONGTYPE"),
        "SADD on a string: {err}"
    );
}

#[test]
fn big_sets_convert_drain_and_sample() {
    let server = Server::start(&["--io_threads", "1"]);
    let mut c = server.conn();
    // 100k integers: intset up to 512, then a hashtable.
    for chunk in 0..100 {
        let mut args: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"big".to_vec()];
        for i in 0..1000 {
            args.push((chunk * 1000 + i).to_string().into_bytes());
        }
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        assert_eq!(c.cmd(&refs), Reply::Int(1000));
        if chunk == 0 {
            assert_eq!(
                c.cmd(&[b"OBJECT", b"ENCODING", b"big"]),
                Reply::bulk("hashtable")
            );
        }
    }
    assert_eq!(c.cmd(&[b"SCARD", b"big"]), Reply::Int(100_000));
    // SRANDMEMBER with a positive count: distinct members.
    let r = c.cmd(&[b"SRANDMEMBER", b"big", b"5000"]);
    let got: HashSet<Vec<u8>> = r.as_array().iter().map(|m| m.as_bytes().to_vec()).collect();
    assert_eq!(got.len(), 5000);
    // Roughly uniform: 200k draws over 10 buckets of 10k members each.
    let mut buckets = [0usize; 10];
    for _ in 0..20 {
        let r = c.cmd(&[b"SRANDMEMBER", b"big", b"-10000"]);
        for m in r.as_array() {
            let v: usize = std::str::from_utf8(m.as_bytes()).unwrap().parse().unwrap();
            buckets[v / 10_000] += 1;
        }
    }
    for b in buckets {
        assert!(
            (17_000..23_000).contains(&b),
            "skewed SRANDMEMBER: {buckets:?}"
        );
    }
    // Drain with SPOP: every member exactly once.
    let mut seen = HashSet::new();
    loop {
        let r = c.cmd(&[b"SPOP", b"big", b"777"]);
        let items = r.as_array();
        if items.is_empty() {
            break;
        }
        for m in items {
            assert!(seen.insert(m.as_bytes().to_vec()), "popped twice");
        }
    }
    assert_eq!(seen.len(), 100_000);
    assert_eq!(c.cmd(&[b"EXISTS", b"big"]), Reply::Int(0));
}

#[test]
fn sscan_returns_stable_members_while_others_come_and_go() {
    let server = Server::start(&["--io_threads", "1"]);
    let mut c = server.conn();
    let mut args: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"s".to_vec()];
    for i in 0..5000 {
        args.push(format!("stable{i}").into_bytes());
    }
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    c.cmd(&refs);
    let mut cursor = b"0".to_vec();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut round = 0;
    loop {
        let r = c.cmd(&[b"SSCAN", b"s", &cursor, b"COUNT", b"50"]);
        let parts = r.as_array();
        for m in parts[1].as_array() {
            *seen.entry(m.as_bytes().to_vec()).or_default() += 1;
        }
        cursor = parts[0].as_bytes().to_vec();
        if cursor == b"0" {
            break;
        }
        // Add 300 volatile members and remove the previous round's.
        let mut add: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"s".to_vec()];
        let mut del: Vec<Vec<u8>> = vec![b"SREM".to_vec(), b"s".to_vec()];
        for j in 0..300 {
            add.push(format!("tmp{round}:{j}").into_bytes());
            if round > 0 {
                del.push(format!("tmp{}:{j}", round - 1).into_bytes());
            }
        }
        let refs: Vec<&[u8]> = add.iter().map(|a| a.as_slice()).collect();
        c.cmd(&refs);
        if round > 0 {
            let refs: Vec<&[u8]> = del.iter().map(|a| a.as_slice()).collect();
            c.cmd(&refs);
        }
        round += 1;
        assert!(round < 10_000, "SSCAN does not finish");
    }
    assert!(round > 5, "the scan took several calls ({round})");
    for i in 0..5000 {
        let k = format!("stable{i}").into_bytes();
        assert_eq!(seen.get(&k), Some(&1), "stable{i} returned once");
    }
}

/// SMOVE between two shards while other clients read both sets with cross-shard
/// commands: a member is always in exactly one of them.
#[test]
fn cross_shard_smove_is_atomic() {
    let server = Server::start(&["--io_threads", &SHARDS.to_string()]);
    let keys = keys_on_distinct_shards("mv", 3);
    let (a, b, dst) = (keys[0].clone(), keys[1].clone(), keys[2].clone());
    let n = 50;
    {
        let mut c = server.conn();
        let mut args: Vec<Vec<u8>> = vec![b"SADD".to_vec(), a.clone().into_bytes()];
        for i in 0..n {
            args.push(format!("m{i}").into_bytes());
        }
        let refs: Vec<&[u8]> = args.iter().map(|x| x.as_slice()).collect();
        c.cmd(&refs);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut movers = Vec::new();
    for t in 0..3 {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        let mut c = server.conn();
        movers.push(std::thread::spawn(move || {
            let (mut moves, mut calls) = (0, 0);
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                let m = format!("m{}", i % n);
                let mut r = c.cmd(&[b"SMOVE", a.as_bytes(), b.as_bytes(), m.as_bytes()]);
                if r == Reply::Int(0) {
                    r = c.cmd(&[b"SMOVE", b.as_bytes(), a.as_bytes(), m.as_bytes()]);
                    calls += 1;
                }
                // 0 happens when another mover moved it in between.
                moves += r.as_int();
                calls += 1;
                i += 7;
            }
            eprintln!("mover {t}: {moves} moves in {calls} calls");
            moves
        }));
    }
    let mut c = server.conn();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut checks = 0;
    while Instant::now() < deadline {
        let r = c.cmd(&[b"SUNION", a.as_bytes(), b.as_bytes()]);
        assert_eq!(
            r.as_array().len(),
            n,
            "SUNION saw a member in flight: {r:?}"
        );
        let r = c.cmd(&[b"SINTERCARD", b"2", a.as_bytes(), b.as_bytes()]);
        assert_eq!(r, Reply::Int(0), "a member in both sets");
        let r = c.cmd(&[b"SUNIONSTORE", dst.as_bytes(), a.as_bytes(), b.as_bytes()]);
        assert_eq!(r, Reply::Int(n as i64));
        let r = c.cmd(&[b"SCARD", dst.as_bytes()]);
        assert_eq!(r, Reply::Int(n as i64));
        checks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let moves: i64 = movers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(moves > 100, "the movers moved ({moves})");
    assert!(checks > 20, "the checker checked ({checks})");
    let all: BTreeSet<Vec<u8>> = c
        .cmd(&[b"SUNION", a.as_bytes(), b.as_bytes()])
        .as_array()
        .iter()
        .map(|m| m.as_bytes().to_vec())
        .collect();
    assert_eq!(all.len(), n);
}

/// *STORE with sources and destination on three shards: the result replaces any type
/// (and its TTL), an empty result deletes the destination, and concurrent readers of
/// the destination only ever see a whole result.
#[test]
fn cross_shard_store_semantics_and_atomicity() {
    let server = Server::start(&["--io_threads", &SHARDS.to_string()]);
    let keys = keys_on_distinct_shards("st", 3);
    let (x, y, d) = (keys[0].as_bytes(), keys[1].as_bytes(), keys[2].as_bytes());
    let mut c = server.conn();
    c.cmd(&[b"SADD", x, b"1", b"2", b"3", b"a"]);
    c.cmd(&[b"SADD", y, b"2", b"3", b"4"]);
    c.cmd(&[b"SET", d, b"string", b"EX", b"100"]);
    assert_eq!(c.cmd(&[b"SINTERSTORE", d, x, y]), Reply::Int(2));
    assert_eq!(c.cmd(&[b"TYPE", d]), Reply::simple("set"));
    assert_eq!(c.cmd(&[b"TTL", d]), Reply::Int(-1));
    assert_eq!(c.cmd(&[b"OBJECT", b"ENCODING", d]), Reply::bulk("intset"));
    assert_eq!(
        c.cmd(&[b"SMEMBERS", d]),
        Reply::array(vec![Reply::bulk("2"), Reply::bulk("3")])
    );
    assert_eq!(c.cmd(&[b"SUNIONSTORE", d, x, y]), Reply::Int(5));
    assert_eq!(
        c.cmd(&[b"OBJECT", b"ENCODING", d]),
        Reply::bulk("hashtable")
    );
    assert_eq!(c.cmd(&[b"SDIFFSTORE", d, x, y]), Reply::Int(2));
    assert_eq!(c.cmd(&[b"SDIFFSTORE", d, x, x]), Reply::Int(0));
    assert_eq!(c.cmd(&[b"EXISTS", d]), Reply::Int(0));
    c.cmd(&[b"SET", d, b"string"]);
    assert!(c.cmd(&[b"SINTER", x, d]).is_error());
    assert!(c.cmd(&[b"SMOVE", x, d, b"1"]).is_error());
    assert_eq!(
        c.cmd(&[b"SISMEMBER", x, b"1"]),
        Reply::Int(1),
        "nothing moved"
    );
    assert_eq!(c.cmd(&[b"SMOVE", b"nosuch", d, b"1"]), Reply::Int(0));
    assert_eq!(
        c.cmd(&[b"SINTERCARD", b"2", x, y, b"LIMIT", b"1"]),
        Reply::Int(1)
    );
    assert_eq!(c.cmd(&[b"DEL", d]), Reply::Int(1));

    c.cmd(&[b"SINTERSTORE", d, x, y]);
    // Writers alternate the destination between two results of different sizes.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (x, y, d) = (keys[0].clone(), keys[1].clone(), keys[2].clone());
        let stop = stop.clone();
        let mut w = server.conn();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                w.cmd(&[b"SUNIONSTORE", d.as_bytes(), x.as_bytes(), y.as_bytes()]);
                w.cmd(&[b"SINTERSTORE", d.as_bytes(), x.as_bytes(), y.as_bytes()]);
                n += 2;
            }
            n
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let r = c.cmd(&[b"SMEMBERS", d]);
        let len = r.as_array().len();
        assert!(
            len == 5 || len == 2,
            "partial result of {len} members: {r:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 10);
}
