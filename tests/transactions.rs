//! Transactions and pub/sub between several clients of the real binary, on several
//! shards: WATCH dirtied by another client, EXEC atomic across shards under a concurrent
//! reader, a client gone in the middle of MULTI, messages reaching subscribers whatever
//! their shard, binary payloads, keyspace notifications.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Eight keys: with three shards they spread over all of them.
const KEYS: [&str; 8] = ["ka", "kb", "kc", "kd", "ke", "kf", "kg", "kh"];

#[test]
fn watch_is_dirtied_by_other_clients_on_any_shard() {
    let s = Server::start(&["--io_threads", "3"]);
    for key in KEYS {
        let mut a = s.conn();
        let mut b = s.conn();
        assert_eq!(a.cmd_str(&format!("SET {key} 1")), Reply::ok());
        assert_eq!(a.cmd_str(&format!("WATCH {key} unrelated")), Reply::ok());
        assert_eq!(b.cmd_str(&format!("INCR {key}")), Reply::Int(2));
        assert_eq!(a.cmd_str("MULTI"), Reply::ok());
        assert_eq!(
            a.cmd_str(&format!("SET {key} 100")),
            Reply::simple("QUEUED")
        );
        assert_eq!(a.cmd_str("EXEC"), Reply::Array(None), "key {key}");
        assert_eq!(a.cmd_str(&format!("GET {key}")), Reply::bulk("2"));
        // Untouched: the transaction runs.
        assert_eq!(a.cmd_str(&format!("WATCH {key}")), Reply::ok());
        assert_eq!(a.cmd_str("MULTI"), Reply::ok());
        assert_eq!(
            a.cmd_str(&format!("SET {key} 100")),
            Reply::simple("QUEUED")
        );
        assert_eq!(a.cmd_str("EXEC"), Reply::array(vec![Reply::ok()]));
    }
}

#[test]
fn watched_key_expiring_aborts_exec() {
    let s = Server::start(&["--io_threads", "2"]);
    let mut a = s.conn();
    assert_eq!(a.cmd_str("SET e 1 PX 100"), Reply::ok());
    assert_eq!(a.cmd_str("WATCH e"), Reply::ok());
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(a.cmd_str("MULTI"), Reply::ok());
    assert_eq!(a.cmd_str("PING"), Reply::simple("QUEUED"));
    assert_eq!(a.cmd_str("EXEC"), Reply::Array(None));
}

#[test]
fn exec_is_atomic_across_shards() {
    let s = Server::start(&["--io_threads", "3"]);
    let port = s.port;
    let mut init = s.conn();
    for k in KEYS {
        init.cmd_str(&format!("SET {k} 0"));
    }
    let rounds = 400;
    let writer = std::thread::spawn(move || {
        let mut w = RawConn::connect(port);
        for _ in 0..rounds {
            let mut pipeline = Vec::new();
            pipeline.extend_from_slice(&encode_command(&[b"MULTI"]));
            for k in KEYS {
                pipeline.extend_from_slice(&encode_command(&[b"INCR", k.as_bytes()]));
            }
            pipeline.extend_from_slice(&encode_command(&[b"EXEC"]));
            w.send_raw(&pipeline);
            assert_eq!(w.read_reply(), Reply::ok());
            for _ in KEYS {
                assert_eq!(w.read_reply(), Reply::simple("QUEUED"));
            }
            let r = w.read_reply();
            assert_eq!(r.as_array().len(), KEYS.len(), "{r:?}");
        }
    });
    let mut reader = s.conn();
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(KEYS.iter().map(|k| k.as_bytes()));
    let mut checks = 0;
    while !writer.is_finished() {
        let r = reader.cmd(&mget);
        let values: Vec<&[u8]> = r.as_array().iter().map(|v| v.as_bytes()).collect();
        assert!(
            values.iter().all(|v| *v == values[0]),
            "a reader saw a partial transaction: {r:?}"
        );
        checks += 1;
    }
    writer.join().unwrap();
    assert!(checks > 0);
    let r = reader.cmd(&mget);
    for v in r.as_array() {
        assert_eq!(v.as_bytes(), rounds.to_string().as_bytes());
    }
}

#[test]
fn transaction_with_global_command_runs_alone() {
    let s = Server::start(&["--io_threads", "3"]);
    let mut a = s.conn();
    for k in KEYS {
        a.cmd_str(&format!("SET {k} v"));
    }
    let r = a.cmd_str("MULTI");
    assert_eq!(r, Reply::ok());
    a.cmd_str("DBSIZE");
    a.cmd_str("FLUSHALL");
    a.cmd_str("DBSIZE");
    a.cmd_str("SET after 1");
    let r = a.cmd_str("EXEC");
    assert_eq!(
        r,
        Reply::array(vec![Reply::Int(8), Reply::ok(), Reply::Int(0), Reply::ok()])
    );
    // Locks are released: every shard still serves.
    for k in KEYS {
        assert_eq!(a.cmd_str(&format!("SET {k} again")), Reply::ok());
    }
}

#[test]
fn client_gone_mid_transaction_leaves_nothing_behind() {
    let s = Server::start(&["--io_threads", "3"]);
    {
        let mut a = s.conn();
        a.cmd_str("WATCH ka kb kc");
        a.cmd_str("MULTI");
        for k in KEYS {
            a.cmd_str(&format!("SET {k} from-a"));
        }
        // Dropped without EXEC.
    }
    let mut b = s.conn();
    for k in KEYS {
        assert_eq!(b.cmd_str(&format!("SET {k} from-b")), Reply::ok());
        assert_eq!(b.cmd_str(&format!("GET {k}")), Reply::bulk("from-b"));
    }
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            let r = b.cmd_str("CLIENT LIST");
            String::from_utf8_lossy(r.as_bytes()).lines().count() == 1
        }
    ));
}

fn read_message(c: &mut RawConn) -> Vec<Vec<u8>> {
    let r = c.read_reply();
    r.as_array().iter().map(|p| p.as_bytes().to_vec()).collect()
}

#[test]
fn publish_reaches_subscribers_on_every_shard() {
    let s = Server::start(&["--io_threads", "3"]);
    let mut subs: Vec<RawConn> = (0..6).map(|_| s.conn()).collect();
    for (i, c) in subs.iter_mut().enumerate() {
        if i % 2 == 0 {
            let r = c.cmd_str("SUBSCRIBE news");
            assert_eq!(r.as_array()[2], Reply::Int(1));
        } else {
            let r = c.cmd_str("PSUBSCRIBE ne*");
            assert_eq!(r.as_array()[2], Reply::Int(1));
        }
    }
    let mut p = s.conn();
    assert_eq!(
        p.cmd_str("PUBSUB NUMSUB news"),
        Reply::array(vec![Reply::bulk("news"), Reply::Int(3)])
    );
    assert_eq!(p.cmd_str("PUBSUB NUMPAT"), Reply::Int(1));
    // A binary payload (gzip magic, NUL, CR LF).
    let payload: &[u8] = b"\x1f\x8b\x08\x00\r\n\x00\xff end";
    assert_eq!(p.cmd(&[b"PUBLISH", b"news", payload]), Reply::Int(6));
    for (i, c) in subs.iter_mut().enumerate() {
        let m = read_message(c);
        if i % 2 == 0 {
            assert_eq!(
                m,
                vec![b"message".to_vec(), b"news".to_vec(), payload.to_vec()]
            );
        } else {
            assert_eq!(
                m,
                vec![
                    b"pmessage".to_vec(),
                    b"ne*".to_vec(),
                    b"news".to_vec(),
                    payload.to_vec()
                ]
            );
        }
    }
    // Order is kept for a stream of messages.
    for i in 0..50 {
        assert_eq!(p.cmd_str(&format!("PUBLISH news m{i}")), Reply::Int(6));
    }
    for c in subs.iter_mut() {
        for i in 0..50 {
            let m = read_message(c);
            assert_eq!(m.last().unwrap(), format!("m{i}").as_bytes());
        }
    }
    // Unsubscribed and disconnected clients stop counting.
    subs[0].cmd_str("UNSUBSCRIBE news");
    drop(subs.pop());
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || { p.cmd_str("PUBLISH news x") == Reply::Int(4) }
    ));
}

#[test]
fn resp3_subscriber_gets_push_frames_between_replies() {
    let s = Server::start(&["--io_threads", "2"]);
    let mut sub = s.conn();
    sub.cmd_str("HELLO 3");
    sub.send(&[b"SUBSCRIBE", b"c"]);
    let (_, raw) = sub.read_reply_raw();
    assert!(
        raw.starts_with(b">3\r\n$9\r\nsubscribe"),
        "{}",
        escape_bytes(&raw)
    );
    let mut p = s.conn();
    assert_eq!(p.cmd_str("PUBLISH c hello"), Reply::Int(1));
    let (_, raw) = sub.read_reply_raw();
    assert_eq!(raw, b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\nhello\r\n");
    // RESP3 clients may run any command while subscribed.
    assert_eq!(sub.cmd_str("SET k v"), Reply::ok());
    assert_eq!(sub.cmd_str("GET k"), Reply::bulk("v"));
}

#[test]
fn keyspace_notifications() {
    let s = Server::start(&["--io_threads", "3"]);
    let mut sub = s.conn();
    let mut c = s.conn();
    assert_eq!(
        c.cmd_str("CONFIG SET notify-keyspace-events KEA"),
        Reply::ok()
    );
    assert_eq!(
        c.cmd_str("CONFIG GET notify-keyspace-events").as_array()[1],
        Reply::bulk("AKE")
    );
    sub.cmd_str("PSUBSCRIBE __keyevent@0__:*");
    let start = Instant::now();
    for k in KEYS {
        c.cmd_str(&format!("SET {k} v"));
    }
    c.cmd_str("DEL ka");
    c.cmd_str("HSET h f v");
    c.cmd_str("SET short v PX 30");
    let mut seen: Vec<(String, String)> = Vec::new();
    while seen.len() < KEYS.len() + 4 && start.elapsed() < Duration::from_secs(10) {
        let m = read_message(&mut sub);
        seen.push((
            String::from_utf8_lossy(&m[2]).into_owned(),
            String::from_utf8_lossy(&m[3]).into_owned(),
        ));
    }
    for k in KEYS {
        assert!(
            seen.contains(&("__keyevent@0__:set".into(), k.into())),
            "{seen:?}"
        );
    }
    assert!(
        seen.contains(&("__keyevent@0__:del".into(), "ka".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("__keyevent@0__:hset".into(), "h".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("__keyevent@0__:expire".into(), "short".into())),
        "{seen:?}"
    );
    // The expired event comes from the active cycle: nobody touches the key.
    let m = read_message(&mut sub);
    assert_eq!(m[2], b"__keyevent@0__:expired");
    assert_eq!(m[3], b"short");
    // Turned off: no more events.
    assert_eq!(
        c.cmd_str("CONFIG SET notify-keyspace-events \"\""),
        Reply::ok()
    );
    c.cmd_str("SET after v");
    c.cmd_str("PUBLISH __keyevent@0__:marker done");
    let m = read_message(&mut sub);
    assert_eq!(m[3], b"done");
}

#[test]
fn publish_inside_multi_and_scripts_reaches_every_shard() {
    let s = Server::start(&["--io_threads", "3"]);
    let mut subs: Vec<RawConn> = (0..6).map(|_| s.conn()).collect();
    for c in subs.iter_mut() {
        c.cmd_str("SUBSCRIBE events");
    }
    let mut p = s.conn();
    p.cmd_str("MULTI");
    p.cmd_str("PUBLISH events in-multi");
    p.cmd_str("SET after-publish 1");
    assert_eq!(
        p.cmd_str("EXEC"),
        Reply::array(vec![Reply::Int(6), Reply::ok()])
    );
    // From a script the reply counts this shard's receivers; every subscriber gets it.
    let r = p.cmd_str("EVAL \"return redis.call('publish', 'events', 'from-script')\" 0");
    assert!(matches!(r, Reply::Int(n) if (0..=6).contains(&n)), "{r:?}");
    for c in subs.iter_mut() {
        assert_eq!(read_message(c)[2], b"in-multi");
        assert_eq!(read_message(c)[2], b"from-script");
    }
}
