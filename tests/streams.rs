//! Integration tests of the stream commands against the real binary: basic commands
//! through the `redis` crate, and with raw connections XREAD BLOCK / XREADGROUP BLOCK
//! woken by XADD from another connection (keys on the waiter's shard and on other
//! shards with `--io_threads 3`, several keys of several shards), `$` semantics,
//! timeouts, a consumer group destroyed under a blocked reader, no blocking inside
//! MULTI, keyspace notifications and WATCH, and streams surviving when emptied.

mod common;

use common::*;
use libellule::shard::key_shard;
use redis::Commands;
use std::time::{Duration, Instant};

/// A key owned by shard `shard` of `n`, starting with `prefix`.
fn key_on(prefix: &str, shard: usize, n: usize) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| key_shard(k.as_bytes(), n) == shard)
        .expect("a key for every shard")
}

/// Waits until INFO reports `n` blocked clients.
fn wait_blocked(c: &mut RawConn, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = c.cmd(&[b"INFO", b"clients"]);
        let text = String::from_utf8_lossy(info.as_bytes()).to_string();
        let v: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("blocked_clients in INFO");
        if v == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "blocked_clients stayed {v}, expected {n}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn bulk(s: &str) -> Reply {
    Reply::bulk(s)
}

/// `[key, [[id, [f, v]]]]` as XREAD answers for one entry (RESP2).
fn one_entry(key: &str, id: &str, f: &str, v: &str) -> Reply {
    Reply::array(vec![Reply::array(vec![
        bulk(key),
        Reply::array(vec![Reply::array(vec![
            bulk(id),
            Reply::array(vec![bulk(f), bulk(v)]),
        ])]),
    ])])
}

#[test]
fn basic_commands_and_types() {
    let server = Server::start(&["--io_threads", "1"]);
    let mut con = server.redis();
    let id: String = redis::cmd("XADD")
        .arg("s")
        .arg("1-1")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    assert_eq!(id, "1-1");
    let auto: String = redis::cmd("XADD")
        .arg("s")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let (ms, seq) = auto.split_once('-').unwrap();
    assert!(ms.parse::<u64>().unwrap() > 1_600_000_000_000);
    assert_eq!(seq, "0");
    let n: i64 = redis::cmd("XLEN").arg("s").query(&mut con).unwrap();
    assert_eq!(n, 2);
    let t: String = redis::cmd("TYPE").arg("s").query(&mut con).unwrap();
    assert_eq!(t, "stream");
    let e: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("s")
        .query(&mut con)
        .unwrap();
    assert_eq!(e, "stream");
    let keys: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .arg("TYPE")
        .arg("stream")
        .query::<(String, Vec<String>)>(&mut con)
        .unwrap()
        .1;
    assert_eq!(keys, vec!["s".to_string()]);
    // COPY and RENAME carry the stream, groups included.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg("g")
        .arg("0")
        .query(&mut con)
        .unwrap();
    let copied: i64 = redis::cmd("COPY")
        .arg("s")
        .arg("s2")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 1);
    let _: () = con.rename("s2", "s3").unwrap();
    let mut raw = server.conn();
    let groups = raw.cmd_str("XINFO GROUPS s3");
    assert_eq!(groups.as_array().len(), 1);
    // Emptied streams stay.
    let mut raw2 = server.conn();
    assert_eq!(raw2.cmd_str("XTRIM s MAXLEN 0").as_int(), 2);
    assert_eq!(raw2.cmd_str("EXISTS s").as_int(), 1);
    assert_eq!(raw2.cmd_str("XLEN s").as_int(), 0);
    assert_eq!(raw2.cmd_str("DEL s").as_int(), 1);
    // Many entries over many nodes.
    let mut p = redis::pipe();
    for i in 1..=5000u64 {
        p.cmd("XADD")
            .arg("big")
            .arg(format!("{i}-0"))
            .arg("field")
            .arg(format!("value-{i}"))
            .ignore();
    }
    let _: () = p.query(&mut con).unwrap();
    assert_eq!(raw2.cmd_str("XLEN big").as_int(), 5000);
    let r = raw2.cmd_str("XRANGE big 2500 2501");
    assert_eq!(r.as_array().len(), 2);
    assert_eq!(r.as_array()[0].as_array()[0], bulk("2500-0"));
    assert_eq!(raw2.cmd_str("XTRIM big MAXLEN ~ 1000").as_int(), 4000);
    assert_eq!(raw2.cmd_str("XLEN big").as_int(), 1000);
    assert_eq!(
        raw2.cmd_str("XREVRANGE big + - COUNT 1").as_array()[0].as_array()[0],
        bulk("5000-0")
    );
}

fn xread_block_woken(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let n: usize = io.parse().unwrap();
    let mut admin = server.conn();
    for shard in 0..n {
        let key = key_on("bs", shard, n);
        let mut waiter = server.conn();
        // `$` on a missing key: only entries added after the call.
        admin.cmd_str(&format!("XADD {key} 1-0 old x"));
        waiter.send(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", key.as_bytes(), b"$"]);
        wait_blocked(&mut admin, 1);
        admin.cmd_str(&format!("XADD {key} 2-0 new y"));
        assert_eq!(waiter.read_reply(), one_entry(&key, "2-0", "new", "y"));
        wait_blocked(&mut admin, 0);
    }
}

#[test]
fn xread_block_woken_io1() {
    xread_block_woken("1");
}

#[test]
fn xread_block_woken_io3() {
    xread_block_woken("3");
}

#[test]
fn xread_block_on_keys_of_several_shards() {
    let server = Server::start(&["--io_threads", "3"]);
    let keys: Vec<String> = (0..3).map(|s| key_on("multi", s, 3)).collect();
    let mut admin = server.conn();
    for k in &keys {
        admin.cmd_str(&format!("XADD {k} 5-0 a b"));
    }
    // Non-blocking: every key with data answers, in argument order.
    let r = admin.cmd_str(&format!(
        "XREAD STREAMS {} {} {} 0 0 0",
        keys[0], keys[1], keys[2]
    ));
    assert_eq!(r.as_array().len(), 3);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(r.as_array()[i].as_array()[0], bulk(k));
    }
    for wake in 0..3 {
        let mut waiter = server.conn();
        let mut args: Vec<Vec<u8>> = vec![b"XREAD".to_vec(), b"BLOCK".to_vec(), b"0".to_vec()];
        args.push(b"STREAMS".to_vec());
        args.extend(keys.iter().map(|k| k.as_bytes().to_vec()));
        args.extend((0..3).map(|_| b"$".to_vec()));
        let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        waiter.send(&refs);
        wait_blocked(&mut admin, 1);
        let id = format!("{}-0", 10 + wake);
        admin.cmd_str(&format!("XADD {} {id} w {wake}", keys[wake]));
        assert_eq!(
            waiter.read_reply(),
            one_entry(&keys[wake], &id, "w", &wake.to_string())
        );
        wait_blocked(&mut admin, 0);
    }
}

#[test]
fn xread_block_timeouts_and_errors() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut c = server.conn();
    let t0 = Instant::now();
    assert_eq!(
        c.cmd_str("XREAD BLOCK 150 STREAMS nokey $"),
        Reply::Array(None)
    );
    let el = t0.elapsed();
    assert!(el >= Duration::from_millis(140), "returned after {el:?}");
    assert!(el < Duration::from_secs(3), "returned after {el:?}");
    assert_eq!(
        c.cmd_str("XREAD BLOCK -1 STREAMS nokey $").error_text(),
        Some("ERR timeout is negative")
    );
    assert_eq!(
        c.cmd_str("XREAD BLOCK x STREAMS nokey $").error_text(),
        Some("ERR timeout is not an integer or out of range")
    );
    // Inside MULTI nothing blocks: a nil reply at once.
    assert_eq!(c.cmd_str("MULTI"), Reply::ok());
    c.cmd_str("XREAD BLOCK 0 STREAMS nokey $");
    c.cmd_str("XREADGROUP GROUP g c BLOCK 0 STREAMS nokey >");
    let t0 = Instant::now();
    let r = c.cmd_str("EXEC");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(r.as_array()[0], Reply::Array(None));
    assert!(r.as_array()[1].is_error());
    // A connection that goes away while blocked is dropped cleanly.
    let mut gone = server.conn();
    gone.send(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"k", b"$"]);
    wait_blocked(&mut c, 1);
    drop(gone);
    wait_blocked(&mut c, 0);
    assert_eq!(c.cmd_str("XADD k 1-0 a b"), bulk("1-0"));
}

fn xreadgroup_block(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let n: usize = io.parse().unwrap();
    let mut admin = server.conn();
    let key = key_on("grp", n - 1, n);
    admin.cmd_str(&format!("XGROUP CREATE {key} g $ MKSTREAM"));
    let mut a = server.conn();
    let mut b = server.conn();
    a.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"alice",
        b"BLOCK",
        b"0",
        b"STREAMS",
        key.as_bytes(),
        b">",
    ]);
    wait_blocked(&mut admin, 1);
    b.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"bob",
        b"BLOCK",
        b"0",
        b"STREAMS",
        key.as_bytes(),
        b">",
    ]);
    wait_blocked(&mut admin, 2);
    // First come, first served: one entry each.
    admin.cmd_str(&format!("XADD {key} 1-0 f 1"));
    assert_eq!(a.read_reply(), one_entry(&key, "1-0", "f", "1"));
    wait_blocked(&mut admin, 1);
    admin.cmd_str(&format!("XADD {key} 2-0 f 2"));
    assert_eq!(b.read_reply(), one_entry(&key, "2-0", "f", "2"));
    wait_blocked(&mut admin, 0);
    let pending = admin.cmd_str(&format!("XPENDING {key} g"));
    assert_eq!(pending.as_array()[0].as_int(), 2);
    // Timeout with a group.
    let t0 = Instant::now();
    a.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"alice",
        b"BLOCK",
        b"100",
        b"STREAMS",
        key.as_bytes(),
        b">",
    ]);
    assert_eq!(a.read_reply(), Reply::Array(None));
    assert!(t0.elapsed() >= Duration::from_millis(90));
    // The group destroyed under a blocked reader.
    a.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"alice",
        b"BLOCK",
        b"0",
        b"STREAMS",
        key.as_bytes(),
        b">",
    ]);
    wait_blocked(&mut admin, 1);
    assert_eq!(
        admin.cmd_str(&format!("XGROUP DESTROY {key} g")).as_int(),
        1
    );
    assert_eq!(
        a.read_reply().error_text(),
        Some("NOGROUP the consumer group this client was blocked on no longer exists")
    );
    wait_blocked(&mut admin, 0);
}

#[test]
fn xreadgroup_block_io1() {
    xreadgroup_block("1");
}

#[test]
fn xreadgroup_block_io3() {
    xreadgroup_block("3");
}

#[test]
fn keyspace_events_and_watch() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut c = server.conn();
    assert_eq!(
        c.cmd_str("CONFIG SET notify-keyspace-events KEA"),
        Reply::ok()
    );
    let mut sub = server.conn();
    sub.cmd_str("PSUBSCRIBE __keyevent@0__:*");
    let script = [
        ("XADD ev 1-0 a b", "xadd"),
        ("XADD ev MAXLEN 1 2-0 a b", "xadd"),
        ("", "xtrim"),
        ("XDEL ev 2-0", "xdel"),
        ("XADD ev 3-0 a b", "xadd"),
        ("XTRIM ev MAXLEN 0", "xtrim"),
        ("XGROUP CREATE ev g 0", "xgroup-create"),
        ("XGROUP SETID ev g 0", "xgroup-setid"),
        ("XGROUP CREATECONSUMER ev g c", "xgroup-createconsumer"),
        ("XGROUP DELCONSUMER ev g c", "xgroup-delconsumer"),
        ("XADD ev 4-0 a b", "xadd"),
        ("XREADGROUP GROUP g d STREAMS ev >", "xgroup-createconsumer"),
        ("XGROUP DESTROY ev g", "xgroup-destroy"),
        ("XSETID ev 10-0", "xsetid"),
        ("DEL ev", "del"),
    ];
    for (cmd, event) in script {
        if !cmd.is_empty() {
            c.cmd_str(cmd);
        }
        let msg = sub.read_reply();
        let parts = msg.as_array();
        assert_eq!(
            parts[2],
            bulk(&format!("__keyevent@0__:{event}")),
            "after {cmd:?}"
        );
        assert_eq!(parts[3], bulk("ev"));
    }
    // WATCH sees XADD.
    let mut w = server.conn();
    w.cmd_str("WATCH wk");
    c.cmd_str("XADD wk 1-0 a b");
    w.cmd_str("MULTI");
    w.cmd_str("XLEN wk");
    assert_eq!(w.cmd_str("EXEC"), Reply::Array(None));
    // As in Redis, group bookkeeping and XSETID notify but do not dirty WATCH.
    for cmd in [
        "XGROUP CREATE wk g 0",
        "XGROUP SETID wk g 0",
        "XSETID wk 5-0",
        "XGROUP CREATECONSUMER wk g c",
        "XREADGROUP GROUP g c2 STREAMS wk >",
        "XACK wk g 1-0",
        "XCLAIM wk g c3 0 1-0",
        "XGROUP DELCONSUMER wk g c3",
    ] {
        w.cmd_str("WATCH wk");
        assert!(!c.cmd_str(cmd).is_error(), "{cmd}");
        w.cmd_str("MULTI");
        w.cmd_str("PING");
        assert_eq!(
            w.cmd_str("EXEC"),
            Reply::array(vec![Reply::simple("PONG")]),
            "after {cmd}"
        );
    }
    // XDEL and XTRIM do.
    for cmd in ["XDEL wk 1-0", "XADD wk 6-0 a b", "XTRIM wk MAXLEN 0"] {
        w.cmd_str("WATCH wk");
        c.cmd_str(cmd);
        w.cmd_str("MULTI");
        w.cmd_str("PING");
        assert_eq!(w.cmd_str("EXEC"), Reply::Array(None), "after {cmd}");
    }
}

#[test]
fn dump_of_a_stream_round_trips() {
    // DUMP/RESTORE of streams: see tests/dump_streams.rs for the comparison with Redis.
    let s = Server::start(&["--io_threads", "1"]);
    let mut c = s.conn();
    c.cmd_str("XADD st 1-1 f v");
    c.cmd_str("XGROUP CREATE st g 0");
    let p = c.cmd_str("DUMP st").as_bytes().to_vec();
    assert_eq!(p[0], 19, "RDB_TYPE_STREAM_LISTPACKS_2");
    assert_eq!(c.cmd(&[b"RESTORE", b"copy", b"0", &p]), Reply::ok());
    assert_eq!(
        c.cmd_str("XINFO STREAM copy FULL"),
        c.cmd_str("XINFO STREAM st FULL")
    );
}
