//! End-to-end tests of Libellule through the `redis` crate and a raw socket:
//! pipelining, binary safety, large values, many connections, cross-shard
//! multi-key commands, protocol errors, AUTH, active expiry and cross-shard
//! latency. Each test starts its own server on its own port.

mod common;

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use redis::Commands;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn dbsize(con: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).expect("DBSIZE")
}

/// Keys without hash tags, so that they spread over the shards.
fn spread_keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i}")).collect()
}

// ---------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------

fn pipeline_1000(io_threads: &str) {
    let server = Server::start(&["--io_threads", io_threads]);
    let mut con = server.redis();

    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("SET")
            .arg(format!("pk:{i}"))
            .arg(format!("value-{i}"));
    }
    let oks: Vec<String> = p.query(&mut con).expect("pipelined SETs");
    assert_eq!(oks.len(), 1000);
    assert!(oks.iter().all(|r| r == "OK"), "every SET answers OK");

    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("GET").arg(format!("pk:{i}"));
    }
    let vals: Vec<String> = p.query(&mut con).expect("pipelined GETs");
    for (i, v) in vals.iter().enumerate() {
        assert_eq!(v, &format!("value-{i}"), "reply {i} out of order or wrong");
    }

    // Mixed pipeline: replies must come back in command order.
    let mut p = redis::pipe();
    for i in 0..1000 {
        match i % 4 {
            0 => p.cmd("INCR").arg("counter"),
            1 => p.cmd("GET").arg(format!("pk:{i}")),
            2 => p.cmd("EXISTS").arg(format!("pk:{i}")).arg("nosuch"),
            _ => p.cmd("STRLEN").arg(format!("pk:{i}")),
        };
    }
    let replies: Vec<redis::Value> = p.query(&mut con).expect("mixed pipeline");
    assert_eq!(replies.len(), 1000);
    for (i, r) in replies.iter().enumerate() {
        match i % 4 {
            0 => assert_eq!(r, &redis::Value::Int((i / 4 + 1) as i64)),
            1 => assert_eq!(
                r,
                &redis::Value::BulkString(format!("value-{i}").into_bytes())
            ),
            2 => assert_eq!(r, &redis::Value::Int(1)),
            _ => assert_eq!(r, &redis::Value::Int(format!("value-{i}").len() as i64)),
        }
    }
    assert_eq!(dbsize(&mut con), 1001);
}

#[test]
fn pipeline_of_1000_commands_io1() {
    pipeline_1000("1");
}

#[test]
fn pipeline_of_1000_commands_io3() {
    pipeline_1000("3");
}

/// 10,000 PINGs in one write, and a command dribbled one byte at a time.
#[test]
fn raw_pipelining_and_fragmented_writes() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    let n = 10_000;
    let mut bytes = Vec::with_capacity(n * 14);
    for _ in 0..n {
        bytes.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    }
    // Write from another thread: the server may answer before we finish.
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        w.write_all(&bytes).unwrap();
    });
    for i in 0..n {
        let r = c.read_reply();
        assert_eq!(r, Reply::simple("PONG"), "reply {i}");
    }
    writer.join().unwrap();

    let cmd = encode_command(&[b"SET", b"frag", b"hello\r\nworld"]);
    for b in &cmd {
        c.send_raw(&[*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.read_reply(), Reply::ok());
    // Two commands in one write, the second split over two writes.
    let mut two = encode_command(&[b"GET", b"frag"]);
    let second = encode_command(&[b"STRLEN", b"frag"]);
    two.extend_from_slice(&second[..7]);
    c.send_raw(&two);
    assert_eq!(c.read_reply(), Reply::bulk("hello\r\nworld"));
    std::thread::sleep(Duration::from_millis(50));
    c.send_raw(&second[7..]);
    assert_eq!(c.read_reply(), Reply::Int(12));
}

// ---------------------------------------------------------------------------
// Binary safety, large values
// ---------------------------------------------------------------------------

#[test]
fn binary_safe_keys_and_values() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut con = server.redis();
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let key: Vec<u8> = b"bin\x00\r\n\xff{tag}".to_vec();
    let _: () = con.set(&key, &all_bytes).unwrap();
    let got: Vec<u8> = con.get(&key).unwrap();
    assert_eq!(got, all_bytes);
    let len: i64 = con.strlen(&key).unwrap();
    assert_eq!(len, 256);
    let part: Vec<u8> = con.getrange(&key, 10, 14).unwrap();
    assert_eq!(part, vec![10, 11, 12, 13, 14]);
    let newlen: i64 = con.append(&key, b"\r\n\x00").unwrap();
    assert_eq!(newlen, 259);

    // Many binary keys, each with its own value, through MSET/MGET.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut pairs = Vec::new();
    for i in 0..100u32 {
        let mut k = vec![0u8; rng.gen_range(0..40)];
        rng.fill_bytes(&mut k);
        k.extend_from_slice(&i.to_be_bytes()); // unique
        let mut v = vec![0u8; rng.gen_range(0..300)];
        rng.fill_bytes(&mut v);
        pairs.push((k, v));
    }
    let _: () = con.mset(&pairs).unwrap();
    let keys: Vec<&Vec<u8>> = pairs.iter().map(|p| &p.0).collect();
    let vals: Vec<Vec<u8>> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
    for (i, (p, v)) in pairs.iter().zip(vals.iter()).enumerate() {
        assert_eq!(&p.1, v, "value {i}");
    }
    // The empty key and the empty value.
    let _: () = con.set(b"", b"").unwrap();
    let got: Vec<u8> = con.get(b"").unwrap();
    assert!(got.is_empty());
    let exists: i64 = con.exists(b"").unwrap();
    assert_eq!(exists, 1);
}

fn large_value(io_threads: &str) {
    let server = Server::start(&["--io_threads", io_threads]);
    let mut con = server.redis();
    let mut rng = SmallRng::seed_from_u64(10);
    let mut big = vec![0u8; 10 * 1024 * 1024];
    rng.fill_bytes(&mut big);
    let _: () = con.set("big", &big).unwrap();
    let got: Vec<u8> = con.get("big").unwrap();
    assert!(got == big, "10 MB value came back different");
    let len: i64 = con.strlen("big").unwrap();
    assert_eq!(len, big.len() as i64);
    let tail: Vec<u8> = con.getrange("big", -10, -1).unwrap();
    assert_eq!(tail, big[big.len() - 10..]);
    let newlen: i64 = con.append("big", b"!").unwrap();
    assert_eq!(newlen, big.len() as i64 + 1);
    // Through the raw client too (exercises partial reads of a big bulk).
    let mut c = server.conn();
    let r = c.cmd(&[b"GETRANGE", b"big", b"0", b"-2"]);
    assert!(r.as_bytes() == big.as_slice());
    // A copy to another key (maybe another shard) and a delete.
    let copied: i64 = redis::cmd("COPY")
        .arg("big")
        .arg("big2")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 1);
    let len2: i64 = con.strlen("big2").unwrap();
    assert_eq!(len2, big.len() as i64 + 1);
    let deleted: i64 = con.del(&["big", "big2"]).unwrap();
    assert_eq!(deleted, 2);
}

#[test]
fn large_10mb_value_io1() {
    large_value("1");
}

#[test]
fn large_10mb_value_io3() {
    large_value("3");
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn many_concurrent_connections() {
    let server = Server::start(&["--io_threads", "3"]);
    let port = server.port;
    let threads = 24;
    let per_thread = 200;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut con = redis_conn(port);
                for i in 0..per_thread {
                    let k = format!("t{t}:k{i}");
                    let _: () = con.set(&k, i).unwrap();
                    let v: i64 = con.get(&k).unwrap();
                    assert_eq!(v, i);
                    let _: i64 = con.incr("shared:counter", 1).unwrap();
                    if i % 20 == 0 {
                        let ks: Vec<String> = (0..10).map(|j| format!("t{t}:k{j}")).collect();
                        let vs: Vec<Option<i64>> = con.mget(&ks).unwrap();
                        assert_eq!(vs.len(), 10);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread panicked");
    }
    let mut con = server.redis();
    let total: i64 = con.get("shared:counter").unwrap();
    assert_eq!(total, threads * per_thread);
    assert_eq!(dbsize(&mut con), threads * per_thread + 1);

    // Many simultaneously open connections, all served.
    let mut conns: Vec<RawConn> = (0..300).map(|_| server.conn()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&[b"ECHO", format!("c{i}").as_bytes()]);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(c.read_reply(), Reply::bulk(format!("c{i}")));
    }
    drop(conns);
    // Still fine after 300 disconnects.
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn cross_shard_multi_key_commands() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut con = server.redis();
    let keys = spread_keys("xs", 200);
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("v-{k}"))).collect();
    let _: () = con.mset(&pairs).unwrap();
    assert_eq!(dbsize(&mut con), 200);

    // MGET over all shards, with misses interleaved, in argument order.
    let mut query = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        query.push(k.clone());
        if i % 10 == 0 {
            query.push(format!("missing:{i}"));
        }
    }
    let vals: Vec<Option<String>> = con.mget(&query).unwrap();
    for (q, v) in query.iter().zip(vals.iter()) {
        if q.starts_with("missing") {
            assert_eq!(v, &None, "{q}");
        } else {
            assert_eq!(v.as_deref(), Some(format!("v-{q}").as_str()), "{q}");
        }
    }

    // EXISTS counts duplicates; TOUCH counts existing keys.
    let n: i64 = redis::cmd("EXISTS")
        .arg(&keys[..50])
        .arg(&keys[..50])
        .arg("nosuch")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 100);
    let n: i64 = redis::cmd("TOUCH")
        .arg(&keys[..50])
        .arg("nosuch")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 50);

    // MSETNX is all-or-nothing across shards.
    let fresh = spread_keys("fresh", 30);
    let mut args: Vec<String> = Vec::new();
    for k in &fresh {
        args.push(k.clone());
        args.push("1".into());
    }
    args.push(keys[17].clone());
    args.push("clobbered".into());
    let r: i64 = redis::cmd("MSETNX").arg(&args).query(&mut con).unwrap();
    assert_eq!(r, 0);
    let e: i64 = redis::cmd("EXISTS").arg(&fresh).query(&mut con).unwrap();
    assert_eq!(e, 0, "a failed MSETNX must not set any key");
    let v: String = con.get(&keys[17]).unwrap();
    assert_eq!(v, format!("v-{}", keys[17]));
    args.truncate(args.len() - 2);
    let r: i64 = redis::cmd("MSETNX").arg(&args).query(&mut con).unwrap();
    assert_eq!(r, 1);
    let e: i64 = redis::cmd("EXISTS").arg(&fresh).query(&mut con).unwrap();
    assert_eq!(e, 30);

    // Hash tags.
    let tagged: Vec<(String, i64)> = (0..20).map(|i| (format!("{{u1}}:f{i}"), i)).collect();
    let _: () = con.mset(&tagged).unwrap();
    let tk: Vec<&String> = tagged.iter().map(|p| &p.0).collect();
    let tv: Vec<i64> = con.mget(&tk).unwrap();
    assert_eq!(tv, (0..20).collect::<Vec<i64>>());

    // RENAME and COPY across shards keep value and TTL.
    let _: () = redis::cmd("SET")
        .arg("src:a")
        .arg("payload")
        .arg("EX")
        .arg(1000)
        .query(&mut con)
        .unwrap();
    for i in 0..20 {
        let from = if i == 0 {
            "src:a".to_string()
        } else {
            format!("dst:{}", i - 1)
        };
        let to = format!("dst:{i}");
        let _: () = con.rename(&from, &to).unwrap();
        let ex: i64 = con.exists(&from).unwrap();
        assert_eq!(ex, 0);
    }
    let v: String = con.get("dst:19").unwrap();
    assert_eq!(v, "payload");
    let ttl: i64 = con.ttl("dst:19").unwrap();
    assert!((990..=1000).contains(&ttl), "TTL after renames: {ttl}");
    for i in 0..20 {
        let c: i64 = redis::cmd("COPY")
            .arg("dst:19")
            .arg(format!("copy:{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(c, 1);
        let ttl: i64 = con.ttl(format!("copy:{i}")).unwrap();
        assert!((990..=1000).contains(&ttl), "TTL after copy: {ttl}");
    }
    let renamed: i64 = redis::cmd("RENAMENX")
        .arg("copy:0")
        .arg("copy:1")
        .query(&mut con)
        .unwrap();
    assert_eq!(renamed, 0);

    // KEYS and DBSIZE see every shard; DEL/UNLINK remove from every shard.
    let all: Vec<String> = con.keys("*").unwrap();
    let size = dbsize(&mut con);
    assert_eq!(all.len() as i64, size);
    let d: i64 = con.del(&keys[..100]).unwrap();
    assert_eq!(d, 100);
    let d: i64 = redis::cmd("UNLINK")
        .arg(&keys[100..])
        .arg("nosuch")
        .query(&mut con)
        .unwrap();
    assert_eq!(d, 100);
    assert_eq!(dbsize(&mut con), size - 200);

    // Databases are separate on every shard.
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    assert_eq!(dbsize(&mut con), 0);
    let _: () = con.mset(&pairs[..50]).unwrap();
    assert_eq!(dbsize(&mut con), 50);
    let _: () = redis::cmd("FLUSHDB").query(&mut con).unwrap();
    assert_eq!(dbsize(&mut con), 0);
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    assert_eq!(dbsize(&mut con), size - 200);
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    assert_eq!(dbsize(&mut con), 0);
}

/// MSET is atomic: a concurrent MGET of the same keys (on different shards)
/// never sees a mix of two MSETs.
#[test]
fn mset_is_atomic_across_shards() {
    let server = Server::start(&["--io_threads", "3"]);
    let port = server.port;
    let keys = spread_keys("atomic", 8);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let keys = keys.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut con = redis_conn(port);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                let pairs: Vec<(&String, u64)> = keys.iter().map(|k| (k, i)).collect();
                let _: () = con.mset(&pairs).unwrap();
                i += 1;
            }
            i
        })
    };
    let mut con = redis_conn(port);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut checks = 0;
    while Instant::now() < deadline {
        let vals: Vec<Option<u64>> = con.mget(&keys).unwrap();
        let first = vals[0];
        assert!(
            vals.iter().all(|v| *v == first),
            "MGET saw a partial MSET: {vals:?}"
        );
        checks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(checks > 0 && writes > 0);
}

// ---------------------------------------------------------------------------
// Protocol errors, AUTH
// ---------------------------------------------------------------------------

#[test]
fn protocol_error_closes_only_that_connection() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut good = server.conn();
    assert_eq!(good.cmd(&[b"SET", b"keep", b"me"]), Reply::ok());
    for garbage in [&b"*abc\r\n"[..], b"*1\r\n$abc\r\n", b"*1\r\nfoo\r\n"] {
        let mut bad = server.conn();
        bad.send_raw(garbage);
        let r = bad.read_reply();
        let text = r
            .error_text()
            .unwrap_or_else(|| panic!("expected an error, got {r:?}"));
        assert!(text.starts_with("ERR Protocol error"), "{text}");
        assert!(
            bad.wait_closed(Duration::from_secs(10)).is_some(),
            "server kept the connection open after a protocol error"
        );
    }
    let mut bad = server.conn();
    bad.send_raw(b"*abc\r\n");
    assert_eq!(
        bad.read_reply(),
        Reply::err("ERR Protocol error: invalid multibulk length")
    );
    assert!(bad.wait_closed(Duration::from_secs(10)).is_some());
    // The well-behaved client and its data are unaffected.
    assert_eq!(good.cmd(&[b"GET", b"keep"]), Reply::bulk("me"));
    assert_eq!(server.conn().cmd(&[b"GET", b"keep"]), Reply::bulk("me"));
}

#[test]
fn inline_commands_over_a_raw_socket() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    c.send_raw(b"PING\r\n");
    assert_eq!(c.read_reply(), Reply::simple("PONG"));
    c.send_raw(b"SET greeting \"hello world\"\r\nGET greeting\r\n");
    assert_eq!(c.read_reply(), Reply::ok());
    assert_eq!(c.read_reply(), Reply::bulk("hello world"));
    c.send_raw(b"ECHO lf-only\n");
    assert_eq!(c.read_reply(), Reply::bulk("lf-only"));
    c.send_raw(b"set lower case\r\nget lower\r\n");
    assert_eq!(c.read_reply(), Reply::ok());
    assert_eq!(c.read_reply(), Reply::bulk("case"));
}

#[test]
fn requirepass_requires_auth() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut c = server.conn();
    let r = c.cmd(&[b"GET", b"a"]);
    assert_eq!(r, Reply::err("NOAUTH Authentication required."));
    let r = c.cmd(&[b"SET", b"a", b"b"]);
    assert!(r.error_text().unwrap_or("").starts_with("NOAUTH"), "{r:?}");
    let r = c.cmd(&[b"AUTH", b"wrong"]);
    assert!(
        r.error_text().unwrap_or("").starts_with("WRONGPASS"),
        "{r:?}"
    );
    assert_eq!(c.cmd(&[b"AUTH", b"s3cret"]), Reply::ok());
    assert_eq!(c.cmd(&[b"SET", b"a", b"b"]), Reply::ok());
    assert_eq!(c.cmd(&[b"GET", b"a"]), Reply::bulk("b"));
    // Another connection is not authenticated by the first one.
    let mut c2 = server.conn();
    assert!(c2
        .cmd(&[b"GET", b"a"])
        .error_text()
        .unwrap_or("")
        .starts_with("NOAUTH"));
    assert_eq!(c2.cmd(&[b"AUTH", b"default", b"s3cret"]), Reply::ok());
    assert_eq!(c2.cmd(&[b"GET", b"a"]), Reply::bulk("b"));
    // The redis crate with a password in the URL.
    let mut con = redis_conn_url(&format!("redis://:s3cret@127.0.0.1:{}/", server.port));
    let v: String = con.get("a").unwrap();
    assert_eq!(v, "b");
    // And without: commands fail with NOAUTH.
    let mut anon = redis_conn(server.port);
    let err = redis::cmd("GET")
        .arg("a")
        .query::<String>(&mut anon)
        .unwrap_err();
    assert!(format!("{err}").contains("NOAUTH"), "{err}");
}

#[test]
fn empty_requirepass_means_no_auth() {
    let server = Server::start(&["--requirepass", ""]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&[b"SET", b"a", b"1"]), Reply::ok());
    assert_eq!(c.cmd(&[b"GET", b"a"]), Reply::bulk("1"));
}

// ---------------------------------------------------------------------------
// Expiry and latency
// ---------------------------------------------------------------------------

fn active_expiry(io_threads: &str) {
    let server = Server::start(&["--io_threads", io_threads, "--hz", "10"]);
    let mut con = server.redis();
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("SET")
            .arg(format!("exp:{i}"))
            .arg("x")
            .arg("PX")
            .arg(100)
            .ignore();
    }
    for i in 0..10 {
        p.cmd("SET")
            .arg(format!("keep:{i}"))
            .arg("y")
            .arg("EX")
            .arg(1000)
            .ignore();
    }
    let _: () = p.query(&mut con).unwrap();
    // The 200 keys are never touched again: only active expiry can remove
    // them, and DBSIZE counts keys that expired but were not removed yet.
    let mut last = -1;
    let done = wait_until(Duration::from_secs(3), Duration::from_millis(100), || {
        last = dbsize(&mut con);
        last == 10
    });
    assert!(
        done,
        "io_threads={io_threads}: DBSIZE still {last} 3 s after 200 keys expired (expected 10)"
    );
    let kept: Vec<String> = con.keys("keep:*").unwrap();
    assert_eq!(kept.len(), 10);
}

#[test]
fn active_expiry_removes_untouched_keys_io1() {
    active_expiry("1");
}

#[test]
fn active_expiry_removes_untouched_keys_io3() {
    active_expiry("3");
}

#[test]
fn idle_cross_shard_requests_are_not_delayed() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut con = server.redis();
    let keys = spread_keys("lat", 16);
    let pairs: Vec<(&String, &str)> = keys.iter().map(|k| (k, "v")).collect();
    let _: () = con.mset(&pairs).unwrap();
    // Let the shards go idle, then issue sequential cross-shard requests:
    // a shard that only notices messages on a timer tick would take
    // 100 x tick here.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    for _ in 0..100 {
        let vals: Vec<String> = con.mget(&keys).unwrap();
        assert_eq!(vals.len(), 16);
    }
    let mget_time = start.elapsed();
    assert!(
        mget_time < Duration::from_secs(5),
        "100 sequential cross-shard MGETs took {mget_time:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    for i in 0..100 {
        let pairs: Vec<(&String, i32)> = keys.iter().map(|k| (k, i)).collect();
        let _: () = con.mset(&pairs).unwrap();
        let n: i64 = con.exists(&keys).unwrap();
        assert_eq!(n, 16);
    }
    let write_time = start.elapsed();
    assert!(
        write_time < Duration::from_secs(5),
        "100 sequential cross-shard MSET+EXISTS took {write_time:?}"
    );
    eprintln!("100 cross-shard MGETs: {mget_time:?}; 100 MSET+EXISTS: {write_time:?}");
}

/// A client that sends its commands and then shuts down its write side
/// (like `printf 'PING\r\n' | nc -N host port`) still gets every reply
/// before the server closes the connection.
#[test]
fn replies_are_sent_after_client_half_close() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    c.send_raw(b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\n");
    c.shutdown_write();
    let rest = c
        .wait_closed(Duration::from_secs(10))
        .expect("server did not close the connection after the client's EOF");
    assert_eq!(
        escape_bytes(&rest),
        escape_bytes(b"+PONG\r\n+OK\r\n$1\r\nv\r\n"),
        "replies lost after the client's half-close"
    );
}

/// More data in flight than the shard's receive-buffer ring holds (64 x 16 KiB): many
/// connections each send a large pipeline at once, so receives find the ring empty
/// (ENOBUFS) and are re-armed. Every command must still be answered, in order.
#[test]
fn receive_buffer_exhaustion_loses_nothing() {
    let server = Server::start(&["--io_threads", "1"]);
    let port = server.port;
    let threads = 8;
    let conns_per_thread = 25;
    let per_conn = 400;
    let value = "x".repeat(200);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let value = value.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<RawConn> = (0..conns_per_thread)
                    .map(|_| RawConn::connect(port))
                    .collect();
                // About 100 KB per connection, written before any reply is read.
                for (c, conn) in conns.iter_mut().enumerate() {
                    let mut batch = Vec::new();
                    for i in 0..per_conn {
                        let k = format!("t{t}:c{c}:k{i}");
                        batch.extend_from_slice(
                            format!(
                                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{value}\r\n",
                                k.len(),
                                value.len()
                            )
                            .as_bytes(),
                        );
                    }
                    conn.send_raw(&batch);
                }
                for conn in conns.iter_mut() {
                    for _ in 0..per_conn {
                        assert_eq!(conn.read_reply(), Reply::ok());
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread panicked");
    }
    let mut con = server.redis();
    assert_eq!(
        dbsize(&mut con),
        (threads * conns_per_thread * per_conn) as i64
    );
}

/// SET over a value of the same size rewrites the key's block in place: the value, the
/// TTL rules (SET clears a TTL; EX sets one), the encoding and INCR must behave exactly
/// as after a SET that builds a new block.
#[test]
fn set_over_a_same_size_value_behaves_like_any_set() {
    let server = Server::start(&["--io_threads", "1"]);
    let mut c = server.conn();
    assert_eq!(c.cmd_str("SET k abc"), Reply::ok());
    assert_eq!(c.cmd_str("SET k xyz"), Reply::ok());
    assert_eq!(c.cmd_str("GET k"), Reply::bulk("xyz"));
    assert_eq!(c.cmd_str("OBJECT ENCODING k"), Reply::bulk("embstr"));
    // Integers over integers.
    assert_eq!(c.cmd_str("SET n 123"), Reply::ok());
    assert_eq!(c.cmd_str("SET n 456"), Reply::ok());
    assert_eq!(c.cmd_str("INCR n"), Reply::Int(457));
    assert_eq!(c.cmd_str("OBJECT ENCODING n"), Reply::bulk("int"));
    // A same-length string over an integer, and back.
    assert_eq!(c.cmd_str("SET n abc"), Reply::ok());
    assert_eq!(c.cmd_str("GET n"), Reply::bulk("abc"));
    assert_eq!(c.cmd_str("SET n 789"), Reply::ok());
    assert_eq!(c.cmd_str("INCR n"), Reply::Int(790));
    // TTLs: EX on a same-size value sets one, a plain SET then clears it.
    assert_eq!(c.cmd_str("SET k uvw EX 100"), Reply::ok());
    assert!(matches!(c.cmd_str("TTL k"), Reply::Int(t) if (90..=100).contains(&t)));
    assert_eq!(c.cmd_str("SET k rst"), Reply::ok());
    assert_eq!(c.cmd_str("TTL k"), Reply::Int(-1));
    assert_eq!(c.cmd_str("GET k"), Reply::bulk("rst"));
    // Longer values (raw encoding) of equal length.
    let a = "a".repeat(100);
    let b = "b".repeat(100);
    assert_eq!(c.cmd(&[b"SET", b"big", a.as_bytes()]), Reply::ok());
    assert_eq!(c.cmd(&[b"SET", b"big", b.as_bytes()]), Reply::ok());
    assert_eq!(c.cmd_str("GET big"), Reply::bulk(b.as_str()));
    assert_eq!(c.cmd_str("OBJECT ENCODING big"), Reply::bulk("raw"));
    // A different length still works.
    assert_eq!(c.cmd_str("SET big short"), Reply::ok());
    assert_eq!(c.cmd_str("GET big"), Reply::bulk("short"));
}
