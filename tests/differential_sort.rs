//! Differential tests of SORT and SORT_RO against redis-server 7.0: scripted cases
//! (numeric and ALPHA sorting, BY patterns with `nosort` and `->field`, GET patterns with
//! `#` and hash fields, LIMIT edge cases, STORE, errors, WRONGTYPE, RESP3) and a seeded
//! random suite (`DIFF_SEED=<seed>`, `DIFF_COMMANDS=<n>`).
//!
//! With `--io_threads 1` every pattern works as in Redis. With `--io_threads 3` the
//! patterns carry the sorted key's hash tag (Libellule refuses BY/GET patterns whose keys
//! may live on another shard, see `docs/rdb.md`), and STORE destinations on other shards
//! exercise the cross-shard coordinator.

mod common;

use common::diff::*;
use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{SystemTime, UNIX_EPOCH};

/// The scripted cases, with `{t}` replaced by `tag` (empty or a hash tag).
fn script(tag: &str) -> String {
    r#"
RPUSH {t}l 3 1 2 10 -5 2.5
SORT {t}l
SORT {t}l DESC
SORT {t}l ASC
SORT {t}l LIMIT 1 2
SORT {t}l LIMIT -1 2
SORT {t}l LIMIT 2 -1
SORT {t}l LIMIT 10 2
SORT {t}l LIMIT 0 0
SORT {t}l LIMIT 5 100
SORT {t}l ALPHA
SORT {t}l ALPHA DESC LIMIT 1 3
SORT {t}l LIMIT x 1
SORT {t}l LIMIT 1 y
SORT {t}l LIMIT 1
SORT {t}l BOGUS
SORT {t}l STORE
SORT {t}l BY
SORT {t}l GET
SORT_RO {t}l STORE {t}dst
SORT_RO {t}l
SORT_RO {t}l DESC LIMIT 0 2
SORT_RO {t}l ALPHA
SORT
SORT_RO
RPUSH {t}bad a 1
SORT {t}bad
SORT {t}bad DESC
SORT {t}bad ALPHA
SORT_RO {t}bad
MSET {t}w_3 1 {t}w_1 5 {t}w_2 3 {t}w_10 0 {t}w_-5 2 {t}w_2.5 4
SORT {t}l BY {t}w_*
SORT {t}l BY {t}w_* DESC
SORT {t}l BY {t}w_* GET #
SORT {t}l BY {t}w_* GET # GET {t}w_*
SORT {t}l BY {t}w_* GET {t}w_* LIMIT 1 3
SORT {t}l BY {t}w_* ALPHA
SORT {t}l BY {t}w_* ALPHA DESC
SORT {t}l BY {t}missing_*
SORT {t}l BY {t}missing_* DESC
SORT {t}l BY {t}missing_* ALPHA
SORT {t}l BY nosort
SORT {t}l BY nosort DESC
SORT {t}l BY nosort LIMIT 1 2
SORT {t}l BY nosort DESC LIMIT 1 2
SORT {t}l BY nosort LIMIT 10 2
SORT {t}l BY nosort LIMIT -3 -3
SORT {t}l BY nosort GET {t}w_*
SORT {t}l BY nosort ALPHA
HSET {t}h_3 f 30 g x3
HSET {t}h_1 f 10 g x1
HSET {t}h_2 f 20
HSET {t}h_10 f -1 g x10
HSET {t}h_-5 f 5 g x-5
HSET {t}h_2.5 f 2.75 g x2.5
SORT {t}l BY {t}h_*->f
SORT {t}l BY {t}h_*->f DESC GET {t}h_*->g
SORT {t}l GET {t}h_*->f GET # GET {t}h_*->g
SORT {t}l BY {t}h_*->g ALPHA GET #
SORT {t}l BY {t}h_*->nofield
SORT {t}l BY {t}h_*-> GET {t}h_*->
SORT {t}l GET nopattern
SORT {t}l GET {t}w_*->f
SORT {t}l BY {t}w_*->f
SORT {t}l BY {t}h_*
SET {t}w_1 notanumber
SORT {t}l BY {t}w_*
SET {t}w_1 5
SORT {t}l STORE {t}out
LRANGE {t}out 0 -1
TYPE {t}out
OBJECT ENCODING {t}out
SORT {t}l BY {t}w_* GET {t}missing_* GET # STORE {t}out2
LRANGE {t}out2 0 -1
SET {t}out3 x EX 100
SORT {t}l DESC STORE {t}out3
TTL {t}out3
LRANGE {t}out3 0 -1
SORT {t}nokey
SORT_RO {t}nokey
SORT {t}nokey STORE {t}out
EXISTS {t}out
SORT {t}l LIMIT 100 1 STORE {t}out2
EXISTS {t}out2
SET {t}str x
SORT {t}str
SORT_RO {t}str
SORT {t}str STORE {t}out
HSET {t}hh a b
SORT {t}hh
SORT {t}l STORE {t}str
TYPE {t}str
SADD {t}s 5 3 9 1 -2
SORT {t}s
SORT {t}s DESC LIMIT 0 2
SORT {t}s BY nosort
SORT {t}s BY nosort STORE {t}sout
LRANGE {t}sout 0 -1
SORT {t}s BY {t}w_* GET #
SADD {t}s2 b a c 10
SORT {t}s2 ALPHA
SORT {t}s2 ALPHA DESC LIMIT 1 2
SORT {t}s2
SORT {t}s2 BY nosort STORE {t}sout
LRANGE {t}sout 0 -1
ZADD {t}z 3 a 1 b 2 c 2 d
OBJECT ENCODING {t}z
SORT {t}z BY nosort
SORT {t}z BY nosort DESC
SORT {t}z BY nosort LIMIT 1 1
SORT {t}z BY nosort DESC LIMIT 1 5
SORT {t}z BY nosort LIMIT 7 5
SORT {t}z ALPHA
SORT {t}z ALPHA DESC
OBJECT ENCODING {t}z
SORT {t}z
ZADD {t}zn 1 10 2 -3 3 2.5
SORT_RO {t}zn
OBJECT ENCODING {t}zn
SORT {t}zn BY nosort STORE {t}zout
LRANGE {t}zout 0 -1
RPUSH {t}special " 5" 0x10 "" inf -inf 1e3 +7 .5 5. -0
SORT {t}special
SORT {t}special DESC
RPUSH {t}nan nan
SORT {t}nan
RPUSH {t}space "5 "
SORT {t}space
RPUSH {t}ints 9223372036854775807 -9223372036854775808 0 007 7
SORT {t}ints
SORT {t}ints ALPHA
HELLO 3
SORT {t}l BY {t}w_* GET {t}missing_* GET #
SORT {t}l LIMIT 0 2
SORT {t}l STORE {t}out4
HELLO 2
# Last: an overflowing score leaves errno at ERANGE in redis-server, which it never
# resets, so every later strtod-based SORT there fails too.
RPUSH {t}big 1e400
SORT {t}big
RPUSH {t}tiny 1e-400
SORT {t}tiny
"#
    .replace("{t}", tag)
}

fn scripted(io_threads: &str, tag: &str) {
    with_pair("sort scripted", io_threads, &[], |d, _| {
        d.script(&script(tag));
    });
}

#[test]
fn sort_scripted_io_threads_1() {
    scripted("1", "");
}

#[test]
fn sort_scripted_io_threads_1_tagged() {
    scripted("1", "{t}");
}

#[test]
fn sort_scripted_io_threads_3() {
    scripted("3", "{t}");
}

/// STORE destinations on other shards (the cross-shard coordinator), and keyspace state
/// afterwards, compared with Redis.
#[test]
fn sort_store_cross_shard() {
    with_pair("sort store cross", "3", &[], |d, _| {
        d.line("RPUSH {a}src 5 2 9 1");
        d.line("MSET {a}w_5 1 {a}w_2 2 {a}w_9 3 {a}w_1 4");
        for i in 0..12 {
            d.line(&format!("SORT {{a}}src STORE dst{i}"));
            d.line(&format!("LRANGE dst{i} 0 -1"));
            d.line(&format!(
                "SORT {{a}}src BY {{a}}w_* DESC GET # GET {{a}}w_* STORE dst{i}"
            ));
            d.line(&format!("LRANGE dst{i} 0 -1"));
            d.line(&format!("SORT {{a}}src LIMIT 10 1 STORE dst{i}"));
            d.line(&format!("EXISTS dst{i}"));
            d.line(&format!("SET dst{i} x"));
            d.line(&format!("SORT {{a}}nosuch STORE dst{i}"));
            d.line(&format!("EXISTS dst{i}"));
            d.line(&format!("SET str{i} x"));
            d.line(&format!("SORT str{i} STORE dst{i}"));
            d.line(&format!("SORT {{a}}src LIMIT x 1 STORE dst{i}"));
        }
        d.line("MULTI");
        d.line("SORT {a}src STORE dst0");
        d.line("LRANGE dst0 0 -1");
        d.line("EXEC");
        d.line("COMMAND GETKEYS SORT k LIMIT 0 1 GET x BY y STORE d1 STORE d2");
        d.line("COMMAND GETKEYS SORT k STORE");
        d.line("COMMAND GETKEYS SORT_RO k BY x");
        // Name, arity, flags, key range and step as Redis reports them.
        for name in ["SORT", "SORT_RO", "DUMP", "RESTORE"] {
            let a = d.redis.cmd(&[b"COMMAND", b"INFO", name.as_bytes()]);
            let b = d.lib.cmd(&[b"COMMAND", b"INFO", name.as_bytes()]);
            let head = |r: &Reply| r.as_array()[0].as_array()[..6].to_vec();
            let flags = |r: &Reply| match &r.as_array()[0].as_array()[2] {
                Reply::Array(Some(v)) | Reply::Set(v) => {
                    let mut v = v.clone();
                    v.sort();
                    v
                }
                other => panic!("flags: {other:?}"),
            };
            assert_eq!(flags(&a), flags(&b), "COMMAND INFO {name} flags");
            let (mut ha, mut hb) = (head(&a), head(&b));
            ha.remove(2);
            hb.remove(2);
            assert_eq!(ha, hb, "COMMAND INFO {name}");
        }
    });
}

/// With several shards, patterns whose keys may live elsewhere are refused with a clear
/// error (Redis Cluster refuses them too); tagged patterns work.
#[test]
fn sort_patterns_refused_across_shards() {
    let lib = Server::start(&["--io_threads", "3"]);
    let mut c = RawConn::connect(lib.port);
    c.cmd(&[b"RPUSH", b"{a}l", b"2", b"1"]);
    let e = c.cmd(&[b"SORT", b"{a}l", b"BY", b"w_*"]);
    assert_eq!(
        e,
        Reply::err(
            "ERR BY option of SORT denied when keys formed by the pattern may be on another shard"
        )
    );
    let e = c.cmd(&[b"SORT_RO", b"{a}l", b"GET", b"w_*"]);
    assert_eq!(
        e,
        Reply::err(
            "ERR GET option of SORT denied when keys formed by the pattern may be on another shard"
        )
    );
    // Constant BY (no sorting) and GET # need no other key.
    let r = c.cmd(&[b"SORT", b"{a}l", b"BY", b"nosort", b"GET", b"#"]);
    assert_eq!(r, Reply::array(vec![Reply::bulk("2"), Reply::bulk("1")]));
    c.cmd(&[b"MSET", b"{a}w_1", b"9", b"{a}w_2", b"0"]);
    let r = c.cmd(&[b"SORT", b"{a}l", b"BY", b"{a}w_*", b"GET", b"{a}w_*"]);
    assert_eq!(r, Reply::array(vec![Reply::bulk("0"), Reply::bulk("9")]));
    // One shard: everything works.
    let lib1 = Server::start(&["--io_threads", "1"]);
    let mut c1 = RawConn::connect(lib1.port);
    c1.cmd(&[b"RPUSH", b"l", b"2", b"1"]);
    c1.cmd(&[b"MSET", b"w_1", b"9", b"w_2", b"0"]);
    let r = c1.cmd(&[b"SORT", b"l", b"BY", b"w_*", b"GET", b"w_*"]);
    assert_eq!(r, Reply::array(vec![Reply::bulk("0"), Reply::bulk("9")]));
}

/// A seeded random suite: random lists, sets and sorted sets of numbers and words,
/// random weights and hash fields, random option combinations.
fn random_suite(io_threads: &str) {
    let seed: u64 = std::env::var("DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let n: usize = std::env::var("DIFF_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    eprintln!("sort random suite: DIFF_SEED={seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    with_pair("sort random", io_threads, &[], |d, _| {
        d.seed = Some(seed);
        let words = [
            "a", "b", "apple", "Zed", "10", "-3", "2.5", "007", "1e2", "x y",
        ];
        for round in 0..n {
            if round % 25 == 0 {
                d.line("FLUSHALL");
                let len = rng.gen_range(1..30);
                let numeric = rng.gen_bool(0.6);
                let mut elems = Vec::new();
                for _ in 0..len {
                    let e = if numeric {
                        match rng.gen_range(0..3) {
                            0 => format!("{}", rng.gen_range(-50..50)),
                            1 => format!("{:.2}", rng.gen_range(-10.0..10.0f64)),
                            _ => format!("{}", rng.gen_range(-5..5) * 1000),
                        }
                    } else {
                        words[rng.gen_range(0..words.len())].to_string()
                    };
                    elems.push(e);
                }
                let q = |s: &str| format!("\"{s}\"");
                let list: Vec<String> = elems.iter().map(|e| q(e)).collect();
                d.line(&format!("RPUSH {{k}}l {}", list.join(" ")));
                d.line(&format!("SADD {{k}}s {}", list.join(" ")));
                let mut z = String::from("ZADD {k}z");
                for (i, e) in elems.iter().enumerate() {
                    z.push_str(&format!(" {} {}", (i * 7) % 11, q(e)));
                }
                d.line(&z);
                for (i, e) in elems.iter().enumerate() {
                    // Distinct weights for distinct elements, so that ALPHA BY has no ties
                    // (Redis's order of ties is its sort algorithm's).
                    d.line(&format!(
                        "SET {{k}}w_{} {}",
                        q(e).trim_matches('"'),
                        1000 - i
                    ));
                    d.line(&format!(
                        "HSET {{k}}h_{} f {}",
                        q(e).trim_matches('"'),
                        500 + i
                    ));
                }
            }
            let key = ["{k}l", "{k}s", "{k}z"][rng.gen_range(0..3)];
            let mut cmd = if rng.gen_bool(0.2) {
                format!("SORT_RO {key}")
            } else {
                format!("SORT {key}")
            };
            let by = rng.gen_range(0..5);
            match by {
                1 => cmd.push_str(" BY {k}w_*"),
                2 => cmd.push_str(" BY {k}h_*->f"),
                3 if key != "{k}s" => cmd.push_str(" BY nosort"),
                _ => {}
            }
            if rng.gen_bool(0.4) {
                cmd.push_str(" ALPHA");
            }
            if rng.gen_bool(0.4) {
                cmd.push_str(if rng.gen_bool(0.5) { " DESC" } else { " ASC" });
            }
            if rng.gen_bool(0.4) {
                cmd.push_str(&format!(
                    " LIMIT {} {}",
                    rng.gen_range(-2..8),
                    rng.gen_range(-2..8)
                ));
            }
            for _ in 0..rng.gen_range(0..3) {
                cmd.push_str(
                    [" GET #", " GET {k}w_*", " GET {k}h_*->f", " GET {k}nope_*"]
                        [rng.gen_range(0..4)],
                );
            }
            let store = !cmd.starts_with("SORT_RO") && rng.gen_bool(0.3);
            if store {
                let dst = ["{k}dst", "other"][rng.gen_range(0..2)];
                cmd.push_str(&format!(" STORE {dst}"));
                d.line(&cmd);
                d.line(&format!("LRANGE {dst} 0 -1"));
            } else {
                d.line(&cmd);
            }
        }
    });
}

#[test]
fn sort_random_io_threads_1() {
    random_suite("1");
}

#[test]
fn sort_random_io_threads_3() {
    random_suite("3");
}

/// Keyspace events of SORT ... STORE: `sortstore` (list class) when a list is stored,
/// `del` when an empty result deletes the destination.
#[test]
fn sort_store_notifies() {
    let lib = Server::start(&["--io_threads", "1"]);
    let mut c = RawConn::connect(lib.port);
    c.cmd(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]);
    c.cmd(&[b"RPUSH", b"src", b"2", b"1"]);
    let mut sub = RawConn::connect(lib.port);
    sub.cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    assert_eq!(c.cmd(&[b"SORT", b"src", b"STORE", b"dst"]), Reply::Int(2));
    let ev = |name: &str| {
        Reply::array(vec![
            Reply::bulk("pmessage"),
            Reply::bulk("__keyevent@0__:*"),
            Reply::bulk(format!("__keyevent@0__:{name}")),
            Reply::bulk("dst"),
        ])
    };
    assert_eq!(sub.read_reply(), ev("sortstore"));
    assert_eq!(
        c.cmd(&[b"SORT", b"src", b"LIMIT", b"5", b"1", b"STORE", b"dst"]),
        Reply::Int(0)
    );
    assert_eq!(sub.read_reply(), ev("del"));
}
