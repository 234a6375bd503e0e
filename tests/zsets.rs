//! Integration tests of the sorted set commands against the real binary: a model-checked
//! random workload on large (skiplist) sets, cross-shard set operations checked against a
//! model, concurrent cross-shard ZMPOP (every element popped exactly once), ZSCAN under
//! concurrent writes, and the key positions of the numkeys commands.

mod common;

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The model's order: score, then member bytes.
fn sorted(model: &HashMap<String, f64>) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
    v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then(a.0.cmp(&b.0)));
    v
}

/// Reads `ZRANGE key 0 -1 WITHSCORES` as (member, score) pairs.
fn zrange_all(con: &mut redis::Connection, key: &str) -> Vec<(String, f64)> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(con)
        .expect("ZRANGE")
}

fn model_workload(io_threads: &str) {
    let server = Server::start(&["--io_threads", io_threads]);
    let mut con = server.redis();
    let mut rng = SmallRng::seed_from_u64(42);
    let mut model: HashMap<String, f64> = HashMap::new();
    for step in 0..4000 {
        let m = format!("m{}", rng.gen_range(0..600));
        match rng.gen_range(0..10) {
            0..=5 => {
                let s = (rng.gen_range(-50..50) as f64) / 4.0;
                let added: i64 = redis::cmd("ZADD")
                    .arg("big")
                    .arg(s)
                    .arg(&m)
                    .query(&mut con)
                    .unwrap();
                assert_eq!(added == 1, !model.contains_key(&m));
                model.insert(m, s);
            }
            6 => {
                let removed: i64 = redis::cmd("ZREM")
                    .arg("big")
                    .arg(&m)
                    .query(&mut con)
                    .unwrap();
                assert_eq!(removed == 1, model.remove(&m).is_some());
            }
            7 => {
                let rank: Option<i64> = redis::cmd("ZRANK")
                    .arg("big")
                    .arg(&m)
                    .query(&mut con)
                    .unwrap();
                let want = sorted(&model)
                    .iter()
                    .position(|e| e.0 == m)
                    .map(|r| r as i64);
                assert_eq!(rank, want, "ZRANK {m}");
            }
            8 => {
                let (a, b) = (rng.gen_range(-15..15), rng.gen_range(-15..15));
                let got: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                    .arg("big")
                    .arg(a)
                    .arg(format!("({b}"))
                    .query(&mut con)
                    .unwrap();
                let want: Vec<String> = sorted(&model)
                    .into_iter()
                    .filter(|e| e.1 >= a as f64 && e.1 < b as f64)
                    .map(|e| e.0)
                    .collect();
                assert_eq!(got, want, "ZRANGEBYSCORE {a} ({b}");
                let count: i64 = redis::cmd("ZCOUNT")
                    .arg("big")
                    .arg(a)
                    .arg(format!("({b}"))
                    .query(&mut con)
                    .unwrap();
                assert_eq!(count as usize, want.len());
            }
            _ => {
                if step % 50 == 0 {
                    let start = rng.gen_range(0..20);
                    let removed: i64 = redis::cmd("ZREMRANGEBYRANK")
                        .arg("big")
                        .arg(start)
                        .arg(start + 2)
                        .query(&mut con)
                        .unwrap();
                    let all = sorted(&model);
                    let gone: Vec<_> = all.iter().skip(start).take(3).cloned().collect();
                    assert_eq!(removed as usize, gone.len());
                    for (m, _) in gone {
                        model.remove(&m);
                    }
                }
            }
        }
        if step % 500 == 0 {
            assert_eq!(zrange_all(&mut con, "big"), sorted(&model), "step {step}");
        }
    }
    assert_eq!(zrange_all(&mut con, "big"), sorted(&model));
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("big")
        .query(&mut con)
        .unwrap();
    assert_eq!(enc, "skiplist");
    let card: i64 = redis::cmd("ZCARD").arg("big").query(&mut con).unwrap();
    assert_eq!(card as usize, model.len());
}

#[test]
fn model_checked_workload_io1() {
    model_workload("1");
}

#[test]
fn model_checked_workload_io3() {
    model_workload("3");
}

/// ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE over keys on different shards, checked
/// against a model, with WEIGHTS and AGGREGATE.
#[test]
fn cross_shard_set_operations_match_a_model() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut con = server.redis();
    let keys = ["sa", "sb", "sc", "sd"];
    let mut models: Vec<BTreeMap<String, f64>> = Vec::new();
    let mut rng = SmallRng::seed_from_u64(7);
    for k in keys {
        let mut m = BTreeMap::new();
        let mut p = redis::pipe();
        for _ in 0..400 {
            let member = format!("e{}", rng.gen_range(0..700));
            let score = rng.gen_range(0..1000) as f64 / 8.0;
            p.cmd("ZADD").arg(k).arg(score).arg(&member).ignore();
            m.insert(member, score);
        }
        p.query::<()>(&mut con).unwrap();
        models.push(m);
    }
    let weights = [1.0, 2.0, 0.5, -1.0];
    let union: Vec<(String, f64)> = {
        let mut acc: BTreeMap<String, f64> = BTreeMap::new();
        for (m, w) in models.iter().zip(weights) {
            for (k, s) in m {
                let v = s * w;
                acc.entry(k.clone())
                    .and_modify(|t| *t = t.max(v))
                    .or_insert(v);
            }
        }
        let h: HashMap<String, f64> = acc.into_iter().collect();
        sorted(&h)
    };
    let n: i64 = redis::cmd("ZUNIONSTORE")
        .arg("dst")
        .arg(4)
        .arg(&keys)
        .arg("WEIGHTS")
        .arg(&weights)
        .arg("AGGREGATE")
        .arg("MAX")
        .query(&mut con)
        .unwrap();
    assert_eq!(n as usize, union.len());
    assert_eq!(zrange_all(&mut con, "dst"), union);

    let inter: Vec<(String, f64)> = {
        let h: HashMap<String, f64> = models[0]
            .iter()
            .filter(|(k, _)| models[1].contains_key(*k))
            .map(|(k, s)| (k.clone(), s + models[1][k]))
            .collect();
        sorted(&h)
    };
    let n: i64 = redis::cmd("ZINTERSTORE")
        .arg("dst2")
        .arg(2)
        .arg("sa")
        .arg("sb")
        .query(&mut con)
        .unwrap();
    assert_eq!(n as usize, inter.len());
    assert_eq!(zrange_all(&mut con, "dst2"), inter);
    let card: i64 = redis::cmd("ZINTERCARD")
        .arg(2)
        .arg("sa")
        .arg("sb")
        .query(&mut con)
        .unwrap();
    assert_eq!(card as usize, inter.len());

    let diff: Vec<(String, f64)> = {
        let h: HashMap<String, f64> = models[0]
            .iter()
            .filter(|(k, _)| !models[1..].iter().any(|m| m.contains_key(*k)))
            .map(|(k, s)| (k.clone(), *s))
            .collect();
        sorted(&h)
    };
    let got: Vec<(String, f64)> = redis::cmd("ZDIFF")
        .arg(4)
        .arg(&keys)
        .arg("WITHSCORES")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, diff);

    // ZRANGESTORE across shards.
    let n: i64 = redis::cmd("ZRANGESTORE")
        .arg("rs")
        .arg("sa")
        .arg(10)
        .arg(20)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 11);
    let want: Vec<(String, f64)> = {
        let h: HashMap<String, f64> = models[0].iter().map(|(k, s)| (k.clone(), *s)).collect();
        sorted(&h)[10..=20].to_vec()
    };
    assert_eq!(zrange_all(&mut con, "rs"), want);
}

/// Several clients pop from three sets on different shards at once: every element
/// comes out exactly once (the coordinator holds the keys' locks).
#[test]
fn concurrent_cross_shard_zmpop_pops_each_element_once() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut con = server.redis();
    let keys = ["q1", "q2", "q3"];
    let mut all = BTreeSet::new();
    for k in keys {
        for i in 0..300 {
            let m = format!("{k}:{i}");
            let _: i64 = redis::cmd("ZADD")
                .arg(k)
                .arg(i)
                .arg(&m)
                .query(&mut con)
                .unwrap();
            all.insert(m);
        }
    }
    let port = server.port;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = redis_conn(port);
                let mut got = Vec::new();
                loop {
                    let r: Option<(String, Vec<(String, f64)>)> = redis::cmd("ZMPOP")
                        .arg(3)
                        .arg(&["q1", "q2", "q3"])
                        .arg(if t % 2 == 0 { "MIN" } else { "MAX" })
                        .arg("COUNT")
                        .arg(3)
                        .query(&mut c)
                        .unwrap();
                    match r {
                        None => break,
                        Some((_, items)) => got.extend(items.into_iter().map(|p| p.0)),
                    }
                }
                got
            })
        })
        .collect();
    let mut popped = Vec::new();
    for h in handles {
        popped.extend(h.join().unwrap());
    }
    let set: BTreeSet<String> = popped.iter().cloned().collect();
    assert_eq!(popped.len(), set.len(), "an element was popped twice");
    assert_eq!(set, all);
    let exists: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut con).unwrap();
    assert_eq!(exists, 0, "emptied sets are deleted");
}

/// ZSCAN of a skiplist returns every member present for the whole scan, while other
/// members come and go between the calls.
#[test]
fn zscan_returns_stable_members_despite_writes() {
    let server = Server::start(&["--io_threads", "1"]);
    let mut con = server.redis();
    for i in 0..1000 {
        let _: i64 = redis::cmd("ZADD")
            .arg("s")
            .arg(i)
            .arg(format!("stable{i}"))
            .query(&mut con)
            .unwrap();
    }
    let mut cursor: u64 = 0;
    let mut seen = BTreeSet::new();
    let mut calls = 0;
    loop {
        let (next, items): (u64, Vec<String>) = redis::cmd("ZSCAN")
            .arg("s")
            .arg(cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut con)
            .unwrap();
        for p in items.chunks(2) {
            seen.insert(p[0].clone());
        }
        // Churn: add and remove other members between calls.
        for j in 0..20 {
            let m = format!("tmp{calls}-{j}");
            let _: i64 = redis::cmd("ZADD")
                .arg("s")
                .arg(j)
                .arg(&m)
                .query(&mut con)
                .unwrap();
            if j % 2 == 0 {
                let _: i64 = redis::cmd("ZREM").arg("s").arg(&m).query(&mut con).unwrap();
            }
        }
        calls += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(calls < 10_000, "ZSCAN does not terminate");
    }
    for i in 0..1000 {
        assert!(
            seen.contains(&format!("stable{i}")),
            "stable{i} was never returned"
        );
    }
    assert!(calls > 1);
}

/// COMMAND GETKEYS knows the numkeys commands, and COMMAND INFO flags them movablekeys.
#[test]
fn numkeys_key_positions() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut con = server.redis();
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("ZUNIONSTORE")
        .arg("d")
        .arg(2)
        .arg("a")
        .arg("b")
        .arg("WEIGHTS")
        .arg(1)
        .arg(2)
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["d", "a", "b"]);
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("ZMPOP")
        .arg(2)
        .arg("x")
        .arg("y")
        .arg("MIN")
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["x", "y"]);
    let err = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("ZUNION")
        .arg(9)
        .arg("a")
        .query::<Vec<String>>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("Invalid arguments"), "{err}");
    let mut raw = server.conn();
    let info = raw.cmd(&[b"COMMAND", b"INFO", b"ZINTER"]);
    let flags = info.as_array()[0].as_array()[2].clone();
    let names: Vec<Vec<u8>> = flags
        .as_array()
        .iter()
        .map(|f| f.as_bytes().to_vec())
        .collect();
    assert_eq!(names, vec![b"readonly".to_vec(), b"movablekeys".to_vec()]);
    // BZMPOP's keys follow its numkeys argument (the second one).
    let r = raw.cmd_str("COMMAND GETKEYS BZMPOP 0 2 k1 k2 MIN");
    assert_eq!(r, Reply::array(vec![Reply::bulk("k1"), Reply::bulk("k2")]));
}

#[test]
fn bzpopmin_is_woken_by_zadd_on_another_shard_and_keeps_fifo_order() {
    let s = Server::start(&["--io_threads", "3"]);
    let port = s.port;
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let h = std::thread::spawn(move || {
                let mut c = RawConn::connect(port);
                c.cmd_str("BZPOPMIN nothing-yet waitz 5")
            });
            // Block in a known order.
            std::thread::sleep(std::time::Duration::from_millis(150));
            (i, h)
        })
        .collect();
    let mut p = s.conn();
    assert_eq!(p.cmd_str("ZADD waitz 1 a 2 b 3 c"), Reply::Int(3));
    for (i, h) in waiters {
        let r = h.join().unwrap();
        let want = ["a", "b", "c"][i];
        assert_eq!(r.as_array()[0].as_bytes(), b"waitz");
        assert_eq!(r.as_array()[1].as_bytes(), want.as_bytes(), "waiter {i}");
    }
    assert_eq!(p.cmd_str("EXISTS waitz"), Reply::Int(0));
    // A timeout answers a null array.
    assert_eq!(p.cmd_str("BZPOPMAX nothing 0.05"), Reply::Array(None));
}
