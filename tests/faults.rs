//! Faults: clients that vanish in the middle of a pipeline, a transaction, a script or a
//! blocking command, and a shard kept busy by a long script. After each, other clients
//! must find no key locked, no waiter left behind (a later push is not swallowed by a
//! dead client) and the data consistent. docs/reliability.md lists them.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// A key that lives on shard `shard` of `n`, with `prefix`.
fn key_on(shard: usize, n: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| libellule::shard::key_shard(k.as_bytes(), n) == shard)
        .expect("some key")
}

/// A connection with a short read timeout: a stuck key or lock fails fast.
fn quick(s: &Server) -> RawConn {
    let c = s.conn();
    c.set_read_timeout(Duration::from_secs(5));
    c
}

fn blocked_clients(c: &mut RawConn) -> i64 {
    let info = c.cmd_str("INFO clients");
    String::from_utf8_lossy(info.as_bytes())
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("blocked_clients")
}

#[test]
fn disconnect_mid_pipeline_leaves_no_lock() {
    let s = Server::start(&["--io_threads", "3"]);
    let a0 = key_on(0, 3, "a");
    let a1 = key_on(1, 3, "b");
    let a2 = key_on(2, 3, "c");
    for round in 0..5 {
        let mut gone = s.conn();
        let mut bytes = Vec::new();
        for i in 0..5000 {
            let v = format!("{round}-{i}");
            // Cross-shard commands take key locks on every shard they touch.
            bytes.extend_from_slice(&encode_command(&[
                b"MSET",
                a0.as_bytes(),
                v.as_bytes(),
                a1.as_bytes(),
                v.as_bytes(),
                a2.as_bytes(),
                v.as_bytes(),
            ]));
            bytes.extend_from_slice(&encode_command(&[b"INCR", b"counter"]));
            bytes.extend_from_slice(&encode_command(&[b"RENAME", a0.as_bytes(), a0.as_bytes()]));
        }
        gone.send_raw(&bytes);
        // Gone without reading a single reply.
        drop(gone);
        let mut c = quick(&s);
        assert_eq!(
            c.cmd(&[
                b"MSET",
                a0.as_bytes(),
                b"x",
                a1.as_bytes(),
                b"x",
                a2.as_bytes(),
                b"x"
            ]),
            Reply::ok(),
            "round {round}"
        );
        // The three keys always agree: no MSET was cut in half.
        let r = c.cmd(&[b"MGET", a0.as_bytes(), a1.as_bytes(), a2.as_bytes()]);
        let items = r.as_array();
        assert!(items[0] == items[1] && items[1] == items[2], "{r:?}");
    }
    let mut c = quick(&s);
    let n = c.cmd_str("INCR counter").as_int();
    assert!(n >= 1);
}

#[test]
fn disconnect_mid_transaction_discards_it() {
    let s = Server::start(&["--io_threads", "2"]);
    let k0 = key_on(0, 2, "t");
    let k1 = key_on(1, 2, "t");
    // Queued but never executed.
    let mut gone = s.conn();
    assert_eq!(gone.cmd_str("MULTI"), Reply::ok());
    assert_eq!(
        gone.cmd_str(&format!("WATCH {k0}")),
        Reply::err("ERR WATCH inside MULTI is not allowed")
    );
    assert_eq!(
        gone.cmd_str(&format!("MSET {k0} 1 {k1} 1")),
        Reply::simple("QUEUED")
    );
    drop(gone);
    let mut c = quick(&s);
    assert_eq!(c.cmd_str(&format!("EXISTS {k0} {k1}")), Reply::Int(0));
    // EXEC sent, then gone: the transaction is all or nothing, and nothing stays locked.
    for round in 0..20 {
        let mut gone = s.conn();
        let v = round.to_string();
        let mut bytes = encode_command(&[b"MULTI"]);
        bytes.extend_from_slice(&encode_command(&[b"SET", k0.as_bytes(), v.as_bytes()]));
        bytes.extend_from_slice(&encode_command(&[b"SET", k1.as_bytes(), v.as_bytes()]));
        bytes.extend_from_slice(&encode_command(&[b"EXEC"]));
        gone.send_raw(&bytes);
        drop(gone);
        let r = c.cmd(&[b"MGET", k0.as_bytes(), k1.as_bytes()]);
        let items = r.as_array();
        assert_eq!(items[0], items[1], "round {round}: {r:?}");
    }
    assert_eq!(c.cmd_str("MULTI"), Reply::ok());
    assert_eq!(c.cmd_str(&format!("SET {k0} end")), Reply::simple("QUEUED"));
    assert_eq!(c.cmd_str(&format!("SET {k1} end")), Reply::simple("QUEUED"));
    assert_eq!(
        c.cmd_str("EXEC"),
        Reply::array(vec![Reply::ok(), Reply::ok()])
    );
}

#[test]
fn disconnect_while_blocked_leaves_no_waiter() {
    let s = Server::start(&["--io_threads", "2"]);
    let q0 = key_on(0, 2, "q");
    let q1 = key_on(1, 2, "q");
    let z0 = key_on(0, 2, "z");
    let mut admin = quick(&s);
    let mut gone = Vec::new();
    let blocking = [
        format!("BLPOP {q0} 0"),
        format!("BLPOP {q1} 0"),
        format!("BRPOP {q0} {q1} 0"),
        format!("BLMOVE {q1} {q0} LEFT RIGHT 0"),
        format!("BZPOPMIN {z0} 0"),
        format!("XREAD BLOCK 0 STREAMS s{q0} $"),
    ];
    for cmd in &blocking {
        let mut c = s.conn();
        c.send(
            &split_args(cmd)
                .iter()
                .map(|a| a.as_slice())
                .collect::<Vec<_>>(),
        );
        gone.push(c);
    }
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            blocked_clients(&mut admin) == blocking.len() as i64
        }),
        "blocked_clients {}",
        blocked_clients(&mut admin)
    );
    drop(gone);
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            blocked_clients(&mut admin) == 0
        }),
        "blocked_clients {}",
        blocked_clients(&mut admin)
    );
    // Pushes now reach the data, not a dead client.
    assert_eq!(admin.cmd_str(&format!("LPUSH {q0} a")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("LPUSH {q1} b")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("ZADD {z0} 1 m")), Reply::Int(1));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(admin.cmd_str(&format!("LLEN {q0}")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("LLEN {q1}")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("ZCARD {z0}")), Reply::Int(1));
    // A live waiter still gets served.
    let mut live = s.conn();
    live.send(&[b"BLPOP", b"fresh", b"5"]);
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || { blocked_clients(&mut admin) == 1 }
    ));
    assert_eq!(admin.cmd_str("LPUSH fresh x"), Reply::Int(1));
    assert_eq!(
        live.read_reply(),
        Reply::array(vec![Reply::bulk("fresh"), Reply::bulk("x")])
    );
}

/// A script that spins for `ms` milliseconds, then writes `done` to KEYS[1].
fn busy_script(ms: u64) -> String {
    format!(
        "local t=redis.call('TIME') local s=t[1]*1000000+t[2] \
         repeat local n=redis.call('TIME') until (n[1]*1000000+n[2])-s > {} \
         redis.call('SET', KEYS[1], 'done') return 1",
        ms * 1000
    )
}

#[test]
fn disconnect_mid_script_runs_it_whole_and_unlocks() {
    let s = Server::start(&["--io_threads", "2"]);
    let k0 = key_on(0, 2, "s");
    let mut gone = s.conn();
    gone.send(&[b"EVAL", busy_script(500).as_bytes(), b"1", k0.as_bytes()]);
    std::thread::sleep(Duration::from_millis(100));
    drop(gone);
    let c = s.conn();
    c.set_read_timeout(Duration::from_secs(10));
    let mut c = c;
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || { c.cmd(&[b"GET", k0.as_bytes()]) == Reply::bulk("done") }
    ));
    assert_eq!(c.cmd(&[b"SET", k0.as_bytes(), b"after"]), Reply::ok());
    assert_eq!(
        c.cmd(&[
            b"EVAL",
            b"return redis.call('GET', KEYS[1])",
            b"1",
            k0.as_bytes()
        ]),
        Reply::bulk("after")
    );
}

#[test]
fn a_slow_shard_does_not_stop_the_others() {
    let s = Server::start(&["--io_threads", "2"]);
    let k0 = key_on(0, 2, "slow");
    let k1 = key_on(1, 2, "fast");
    // Connections land on a shard chosen by the kernel: open several, so some are homed
    // on shard 1.
    let mut conns: Vec<RawConn> = (0..8).map(|_| quick(&s)).collect();
    for c in conns.iter_mut() {
        assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
    }
    let mut slow = s.conn();
    slow.set_read_timeout(Duration::from_secs(20));
    slow.send(&[b"EVAL", busy_script(2000).as_bytes(), b"1", k0.as_bytes()]);
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    for c in conns.iter_mut() {
        c.send(&[b"SET", k1.as_bytes(), b"v"]);
    }
    // Within the script's 2 seconds, connections homed on shard 1 are answered.
    let mut fast = 0;
    for c in conns.iter_mut() {
        c.set_read_timeout(Duration::from_millis(300));
        if let Ok(r) = c.try_read_reply() {
            assert_eq!(r, Reply::ok());
            fast += 1;
        }
    }
    let during = start.elapsed();
    assert!(
        fast >= 1,
        "no connection was served while shard 0 ran a script"
    );
    assert!(during < Duration::from_millis(1900), "took {during:?}");
    assert_eq!(slow.read_reply(), Reply::Int(1));
    // The rest are answered once the script ends.
    for c in conns.iter_mut() {
        c.set_read_timeout(Duration::from_secs(10));
    }
    let mut c = quick(&s);
    assert_eq!(c.cmd(&[b"GET", k0.as_bytes()]), Reply::bulk("done"));
}
