//! Integration tests of the list commands against the real binary: the commands through
//! the `redis` crate, and the blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH,
//! BLMPOP) with raw connections: timeouts, waiting forever until another connection
//! pushes, FIFO fairness, waiters on another shard than their keys, one command waiting
//! on keys of several shards, disconnection while blocked, BLMOVE across shards,
//! pipelined commands behind a blocked one, wake-ups by RENAME, and a stress test that
//! counts every element (none lost, none duplicated).

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

fn pair(k: &str, v: &str) -> Reply {
    Reply::array(vec![bulk(k), bulk(v)])
}

fn basic_commands(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let mut con = server.redis();
    let n: i64 = con.rpush("l", &["a", "b", "c"]).unwrap();
    assert_eq!(n, 3);
    let n: i64 = con.lpush("l", "z").unwrap();
    assert_eq!(n, 4);
    let all: Vec<String> = con.lrange("l", 0, -1).unwrap();
    assert_eq!(all, ["z", "a", "b", "c"]);
    let v: Option<String> = con.lindex("l", -1).unwrap();
    assert_eq!(v.as_deref(), Some("c"));
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("l")
        .query(&mut con)
        .unwrap();
    assert_eq!(enc, "quicklist");
    let t: String = redis::cmd("TYPE").arg("l").query(&mut con).unwrap();
    assert_eq!(t, "list");
    // Many elements over many nodes, then popped from both ends.
    let mut p = redis::pipe();
    for i in 0..20_000 {
        p.cmd("RPUSH")
            .arg("big")
            .arg(format!("element-{i}"))
            .ignore();
    }
    let _: () = p.query(&mut con).unwrap();
    let len: i64 = con.llen("big").unwrap();
    assert_eq!(len, 20_000);
    let mid: String = con.lindex("big", 12_345).unwrap();
    assert_eq!(mid, "element-12345");
    let head: Vec<String> = redis::cmd("LPOP")
        .arg("big")
        .arg(3)
        .query(&mut con)
        .unwrap();
    assert_eq!(head, ["element-0", "element-1", "element-2"]);
    let tail: String = con.rpop("big", None).unwrap();
    assert_eq!(tail, "element-19999");
    // Cross-shard LMOVE (keys on different shards when io_threads > 1).
    let nshards: usize = io.parse().unwrap();
    let (a, b) = (
        key_on("mva", 0, nshards),
        key_on("mvb", nshards - 1, nshards),
    );
    let _: () = con.rpush(&a, &["1", "2"]).unwrap();
    let moved: String = redis::cmd("LMOVE")
        .arg(&a)
        .arg(&b)
        .arg("RIGHT")
        .arg("LEFT")
        .query(&mut con)
        .unwrap();
    assert_eq!(moved, "2");
    let moved: String = redis::cmd("RPOPLPUSH")
        .arg(&a)
        .arg(&b)
        .query(&mut con)
        .unwrap();
    assert_eq!(moved, "1");
    let exists: i64 = con.exists(&a).unwrap();
    assert_eq!(exists, 0);
    let bl: Vec<String> = con.lrange(&b, 0, -1).unwrap();
    assert_eq!(bl, ["1", "2"]);
    // LMPOP over keys of several shards.
    let r: (String, Vec<String>) = redis::cmd("LMPOP")
        .arg(2)
        .arg(&a)
        .arg(&b)
        .arg("LEFT")
        .arg("COUNT")
        .arg(5)
        .query(&mut con)
        .unwrap();
    assert_eq!(r, (b.clone(), vec!["1".to_string(), "2".to_string()]));
}

#[test]
fn basic_commands_io1() {
    basic_commands("1");
}

#[test]
fn basic_commands_io3() {
    basic_commands("3");
}

#[test]
fn timeouts() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    let t = Instant::now();
    assert_eq!(c.cmd_str("BLPOP nokey other 0.2"), Reply::Array(None));
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(190), "returned after {e:?}");
    assert!(e < Duration::from_secs(3), "returned after {e:?}");
    let t = Instant::now();
    assert_eq!(
        c.cmd_str("BLMOVE nokey d LEFT LEFT 0.1"),
        Reply::Array(None)
    );
    assert_eq!(c.cmd_str("BRPOPLPUSH nokey d 0.1"), Reply::Array(None));
    assert_eq!(c.cmd_str("BLMPOP 0.1 1 nokey LEFT"), Reply::Array(None));
    assert!(t.elapsed() >= Duration::from_millis(290));
    c.cmd_str("HELLO 3");
    assert_eq!(c.cmd_str("BRPOP nokey 0.05"), Reply::Null);
    assert_eq!(
        c.cmd_str("BLPOP nokey -1"),
        Reply::err("ERR timeout is negative")
    );
    assert_eq!(
        c.cmd_str("BLPOP nokey abc"),
        Reply::err("ERR timeout is not a float or out of range")
    );
    wait_blocked(&mut c, 0);
}

/// `io_threads` > 1: the waiter and the pusher are likely on different shards, and the
/// key is on shard 0, 1 or 2 in turn.
fn forever_woken_by_push(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let n: usize = io.parse().unwrap();
    let mut waiter = server.conn();
    let mut pusher = server.conn();
    for shard in 0..n {
        let k = key_on("fw", shard, n);
        waiter.send(&[b"BLPOP", k.as_bytes(), b"0"]);
        wait_blocked(&mut pusher, 1);
        assert_eq!(
            pusher.cmd(&[b"RPUSH", k.as_bytes(), b"v1", b"v2"]),
            Reply::Int(2)
        );
        assert_eq!(waiter.read_reply(), pair(&k, "v1"));
        assert_eq!(
            pusher.cmd(&[b"LRANGE", k.as_bytes(), b"0", b"-1"]),
            Reply::array(vec![bulk("v2")])
        );
        wait_blocked(&mut pusher, 0);
    }
}

#[test]
fn forever_woken_by_push_io1() {
    forever_woken_by_push("1");
}

#[test]
fn forever_woken_by_push_io3() {
    forever_woken_by_push("3");
}

/// Three waiters on one key are served in the order they blocked.
fn fairness(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let mut admin = server.conn();
    let mut waiters: Vec<RawConn> = (0..3).map(|_| server.conn()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&[b"BRPOP", b"fair", b"0"]);
        wait_blocked(&mut admin, i as i64 + 1);
    }
    assert_eq!(admin.cmd_str("LPUSH fair 1 2 3"), Reply::Int(3));
    // BRPOP takes from the tail: 1 first.
    for (i, w) in waiters.iter_mut().enumerate() {
        assert_eq!(w.read_reply(), pair("fair", &(i + 1).to_string()));
    }
    assert_eq!(admin.cmd_str("EXISTS fair"), Reply::Int(0));
    // One push of one element wakes only the first waiter; the rest keep waiting.
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&[b"BLPOP", b"fair", b"0"]);
        wait_blocked(&mut admin, i as i64 + 1);
    }
    for (round, w) in waiters.iter_mut().enumerate() {
        admin.cmd_str(&format!("RPUSH fair r{round}"));
        assert_eq!(w.read_reply(), pair("fair", &format!("r{round}")));
        wait_blocked(&mut admin, 2 - round as i64);
    }
}

#[test]
fn fairness_io1() {
    fairness("1");
}

#[test]
fn fairness_io3() {
    fairness("3");
}

/// One BLPOP on keys of three shards: the first key pushed wins, the waiters left on
/// the other shards are cancelled and take nothing.
#[test]
fn multi_shard_wait() {
    let server = Server::start(&["--io_threads", "3"]);
    let keys: Vec<String> = (0..3).map(|s| key_on("ms", s, 3)).collect();
    let mut w = server.conn();
    let mut admin = server.conn();
    for winner in 0..3 {
        admin.cmd_str("FLUSHALL");
        let mut cmd: Vec<&[u8]> = vec![b"BLPOP"];
        cmd.extend(keys.iter().map(|k| k.as_bytes()));
        cmd.push(b"0");
        w.send(&cmd);
        wait_blocked(&mut admin, 1);
        admin.cmd(&[b"RPUSH", keys[winner].as_bytes(), b"x"]);
        assert_eq!(w.read_reply(), pair(&keys[winner], "x"));
        wait_blocked(&mut admin, 0);
        for k in &keys {
            admin.cmd(&[b"RPUSH", k.as_bytes(), b"after"]);
        }
        for k in &keys {
            assert_eq!(
                admin.cmd(&[b"LRANGE", k.as_bytes(), b"0", b"-1"]),
                Reply::array(vec![bulk("after")]),
                "{k}: a cancelled waiter took an element"
            );
        }
    }
}

/// A client that disconnects while blocked takes nothing pushed afterwards.
fn disconnect_loses_nothing(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let n: usize = io.parse().unwrap();
    let mut admin = server.conn();
    for shard in 0..n {
        let k = key_on("dc", shard, n);
        let mut w = server.conn();
        w.send(&[b"BLPOP", k.as_bytes(), b"0"]);
        wait_blocked(&mut admin, 1);
        drop(w);
        wait_blocked(&mut admin, 0);
        admin.cmd(&[b"RPUSH", k.as_bytes(), b"kept"]);
        assert_eq!(
            admin.cmd(&[b"LRANGE", k.as_bytes(), b"0", b"-1"]),
            Reply::array(vec![bulk("kept")])
        );
    }
    // Disconnect and push at once, many times: every element is either still in the
    // list or was the reply of a waiter whose connection was open.
    for i in 0..30 {
        let k = format!("dc2:{i}");
        let mut w = server.conn();
        w.send(&[b"BLPOP", k.as_bytes(), b"0"]);
        wait_blocked(&mut admin, 1);
        drop(w);
        admin.cmd(&[b"RPUSH", k.as_bytes(), b"v"]);
        wait_blocked(&mut admin, 0);
    }
    // Restores happen after the push: give them a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = (0..30)
            .filter(|i| admin.cmd_str(&format!("LLEN dc2:{i}")).as_int() == 1)
            .count();
        if left == 30 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} of 30 elements left");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn disconnect_loses_nothing_io1() {
    disconnect_loses_nothing("1");
}

#[test]
fn disconnect_loses_nothing_io3() {
    disconnect_loses_nothing("3");
}

/// BLMOVE with source and destination on different shards (both orders), woken by a
/// push; and a destination of the wrong type leaves the element on the source.
#[test]
fn blmove_across_shards() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut admin = server.conn();
    let mut w = server.conn();
    for (s, d) in [(0, 1), (2, 0), (1, 2)] {
        let src = key_on("src", s, 3);
        let dst = key_on("dst", d, 3);
        w.send(&[
            b"BLMOVE",
            src.as_bytes(),
            dst.as_bytes(),
            b"LEFT",
            b"RIGHT",
            b"0",
        ]);
        wait_blocked(&mut admin, 1);
        admin.cmd(&[b"RPUSH", src.as_bytes(), b"a", b"b"]);
        assert_eq!(w.read_reply(), bulk("a"));
        assert_eq!(
            admin.cmd(&[b"LRANGE", dst.as_bytes(), b"0", b"-1"]),
            Reply::array(vec![bulk("a")])
        );
        assert_eq!(
            admin.cmd(&[b"LRANGE", src.as_bytes(), b"0", b"-1"]),
            Reply::array(vec![bulk("b")])
        );
        // Data available: moves at once.
        w.send(&[b"BRPOPLPUSH", src.as_bytes(), dst.as_bytes(), b"0"]);
        assert_eq!(w.read_reply(), bulk("b"));
        assert_eq!(admin.cmd(&[b"EXISTS", src.as_bytes()]), Reply::Int(0));
        // Wrong destination type.
        admin.cmd(&[b"DEL", dst.as_bytes()]);
        admin.cmd(&[b"SET", dst.as_bytes(), b"string"]);
        w.send(&[
            b"BLMOVE",
            src.as_bytes(),
            dst.as_bytes(),
            b"LEFT",
            b"RIGHT",
            b"0",
        ]);
        wait_blocked(&mut admin, 1);
        admin.cmd(&[b"RPUSH", src.as_bytes(), b"c"]);
        assert!(w.read_reply().is_error());
        assert_eq!(
            admin.cmd(&[b"LRANGE", src.as_bytes(), b"0", b"-1"]),
            Reply::array(vec![bulk("c")])
        );
        admin.cmd(&[b"DEL", src.as_bytes(), dst.as_bytes()]);
    }
}

/// Commands pipelined behind a blocked command wait for it and answer in order.
fn pipelined_after_blocked(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let mut admin = server.conn();
    let mut w = server.conn();
    w.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n");
    wait_blocked(&mut admin, 1);
    // Nothing answered yet, and the SET has not run.
    assert_eq!(admin.cmd_str("EXISTS x"), Reply::Int(0));
    w.set_read_timeout(Duration::from_millis(200));
    assert!(w.try_read_reply().is_err(), "a reply came before the push");
    w.set_read_timeout(Duration::from_secs(30));
    admin.cmd_str("RPUSH q v");
    assert_eq!(w.read_reply(), pair("q", "v"));
    assert_eq!(w.read_reply(), Reply::simple("PONG"));
    assert_eq!(w.read_reply(), Reply::ok());
    assert_eq!(w.read_reply(), bulk("1"));
}

#[test]
fn pipelined_after_blocked_io1() {
    pipelined_after_blocked("1");
}

#[test]
fn pipelined_after_blocked_io3() {
    pipelined_after_blocked("3");
}

/// BLMPOP with COUNT, RENAME and COPY onto a waited key, a push to a string key does
/// not wake, LPUSHX on a missing key does not wake.
#[test]
fn wake_ups() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut admin = server.conn();
    let mut w = server.conn();
    w.send(&[b"BLMPOP", b"0", b"1", b"bm", b"RIGHT", b"COUNT", b"2"]);
    wait_blocked(&mut admin, 1);
    admin.cmd_str("LPUSHX bm a");
    admin.cmd_str("RPUSH bm a b c");
    assert_eq!(
        w.read_reply(),
        Reply::array(vec![bulk("bm"), Reply::array(vec![bulk("c"), bulk("b")])])
    );
    // RENAME of a list onto the waited key.
    w.send(&[b"BLPOP", b"{r}dst", b"0"]);
    wait_blocked(&mut admin, 1);
    admin.cmd_str("RPUSH {r}src moved");
    admin.cmd_str("RENAME {r}src {r}dst");
    assert_eq!(w.read_reply(), pair("{r}dst", "moved"));
    // Cross-shard RENAME.
    let (a, b) = (key_on("rn", 0, 3), key_on("rn", 1, 3));
    w.send(&[b"BLPOP", b.as_bytes(), b"0"]);
    wait_blocked(&mut admin, 1);
    admin.cmd(&[b"RPUSH", a.as_bytes(), b"x"]);
    admin.cmd(&[b"RENAME", a.as_bytes(), b.as_bytes()]);
    assert_eq!(w.read_reply(), pair(&b, "x"));
    // COPY.
    w.send(&[b"BLPOP", b.as_bytes(), b"0"]);
    wait_blocked(&mut admin, 1);
    admin.cmd(&[b"RPUSH", a.as_bytes(), b"y"]);
    admin.cmd(&[b"COPY", a.as_bytes(), b.as_bytes()]);
    assert_eq!(w.read_reply(), pair(&b, "y"));
    assert_eq!(admin.cmd(&[b"LLEN", a.as_bytes()]), Reply::Int(1));
    wait_blocked(&mut admin, 0);
    // SET on the waited key does not wake; the client times out.
    w.send(&[b"BLPOP", b"sk", b"0.3"]);
    wait_blocked(&mut admin, 1);
    admin.cmd_str("SET sk v");
    assert_eq!(w.read_reply(), Reply::Array(None));
}

/// Many clients pop with tiny timeouts while elements are pushed: every element is
/// received exactly once or is still in the list.
fn stress_no_loss(io: &str) {
    let server = Server::start(&["--io_threads", io]);
    let port = server.port;
    let total = 3000usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..4 {
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut c = RawConn::connect(port);
            let mut got: Vec<String> = Vec::new();
            let cmds: [&[u8]; 4] = [b"BLPOP", b"BRPOP", b"BLMPOP", b"BRPOPLPUSH"];
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let which = cmds[(i + t) % 4];
                i += 1;
                let r = match which {
                    b"BLMPOP" => c.cmd(&[
                        b"BLMPOP", b"0.005", b"2", b"s1", b"s2", b"LEFT", b"COUNT", b"3",
                    ]),
                    b"BRPOPLPUSH" => {
                        // Moves within the pool of keys: the element stays countable.
                        let _ = c.cmd(&[b"BRPOPLPUSH", b"s1", b"s2", b"0.005"]);
                        continue;
                    }
                    _ => c.cmd(&[which, b"s1", b"s2", b"0.005"]),
                };
                match r {
                    Reply::Array(None) => {}
                    Reply::Array(Some(items)) => match &items[1] {
                        Reply::Array(Some(elems)) => got.extend(
                            elems
                                .iter()
                                .map(|e| String::from_utf8_lossy(e.as_bytes()).to_string()),
                        ),
                        e => got.push(String::from_utf8_lossy(e.as_bytes()).to_string()),
                    },
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            got
        }));
    }
    let mut p = RawConn::connect(port);
    for i in 0..total {
        let key: &[u8] = if i % 2 == 0 { b"s1" } else { b"s2" };
        p.cmd(&[b"RPUSH", key, i.to_string().as_bytes()]);
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all: Vec<String> = Vec::new();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    for k in ["s1", "s2"] {
        if let Reply::Array(Some(items)) = p.cmd_str(&format!("LRANGE {k} 0 -1")) {
            all.extend(
                items
                    .iter()
                    .map(|e| String::from_utf8_lossy(e.as_bytes()).to_string()),
            );
        }
    }
    let mut nums: Vec<usize> = all.iter().map(|s| s.parse().unwrap()).collect();
    nums.sort_unstable();
    let expected: Vec<usize> = (0..total).collect();
    assert_eq!(nums.len(), total, "elements lost or duplicated");
    assert_eq!(nums, expected);
}

#[test]
fn stress_no_loss_io1() {
    stress_no_loss("1");
}

#[test]
fn stress_no_loss_io3() {
    stress_no_loss("3");
}
