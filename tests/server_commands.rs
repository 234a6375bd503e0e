//! Connection and server commands against the real binary: MONITOR, CLIENT KILL/REPLY/
//! LIST, the idle `--timeout`, `--maxclients`, INFO fields that clients wait for, CONFIG
//! SET reaching every shard, COMMAND, HELLO 3, DEBUG SLEEP and SHUTDOWN.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn bulk_text(r: &Reply) -> String {
    match r {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        Reply::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a bulk or verbatim string, got {other:?}"),
    }
}

#[test]
fn monitor_sees_commands_from_every_shard() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut mon = server.conn();
    assert_eq!(mon.cmd_str("MONITOR"), Reply::ok());
    // Several clients, so some are homed on other shards than the monitor.
    let mut clients: Vec<RawConn> = (0..6).map(|_| server.conn()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let key = format!("mon-key-{i}");
        assert_eq!(c.cmd(&[b"SET", key.as_bytes(), b"a\"b"]), Reply::ok());
    }
    mon.set_read_timeout(Duration::from_secs(10));
    let mut seen = Vec::new();
    for _ in 0..6 {
        match mon.read_reply() {
            Reply::Simple(line) => seen.push(line),
            other => panic!("monitor sent {other:?}"),
        }
    }
    for i in 0..6 {
        // Redis shows the arguments as sent, command name case included.
        let want = format!("\"SET\" \"mon-key-{i}\" \"a\\\"b\"");
        assert!(
            seen.iter()
                .any(|l| l.ends_with(&want) && l.contains(" [0 127.0.0.1:")),
            "no monitor line for client {i}: {seen:?}"
        );
    }
}

#[test]
fn client_kill_by_id_reaches_other_shards() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut killer = server.conn();
    let mut victims: Vec<RawConn> = (0..6).map(|_| server.conn()).collect();
    for v in victims.iter_mut() {
        let id = v.cmd_str("CLIENT ID").as_int();
        let n = killer.cmd(&[b"CLIENT", b"KILL", b"ID", id.to_string().as_bytes()]);
        assert_eq!(n, Reply::Int(1), "CLIENT KILL ID {id}");
        assert!(
            v.wait_closed(Duration::from_secs(10)).is_some(),
            "client {id} was not disconnected"
        );
    }
    // The killer itself is skipped by default and still works.
    let me = killer.cmd_str("CLIENT ID").as_int();
    assert_eq!(
        killer.cmd(&[b"CLIENT", b"KILL", b"ID", me.to_string().as_bytes()]),
        Reply::Int(0)
    );
    assert_eq!(
        killer.cmd_str("CLIENT KILL 1.2.3.4:5"),
        Reply::err("ERR No such client")
    );
    assert_eq!(killer.cmd_str("PING"), Reply::simple("PONG"));
}

#[test]
fn client_list_info_setname_and_reply_modes() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    assert_eq!(c.cmd_str("CLIENT SETNAME worker-1"), Reply::ok());
    assert_eq!(c.cmd_str("CLIENT GETNAME"), Reply::bulk("worker-1"));
    assert_eq!(
        c.cmd(&[b"CLIENT", b"SETNAME", b"has space"]).kind(),
        "error",
        "names with spaces are refused"
    );
    assert_eq!(c.cmd_str("CLIENT SETINFO LIB-NAME ioredis"), Reply::ok());
    let mut other = server.conn();
    other.cmd_str("CLIENT SETNAME other");
    let list = bulk_text(&c.cmd_str("CLIENT LIST"));
    assert!(
        list.contains("name=worker-1") && list.contains("lib-name=ioredis"),
        "{list}"
    );
    assert!(list.contains("name=other"), "{list}");
    let info = bulk_text(&c.cmd_str("CLIENT INFO"));
    assert!(
        info.contains("name=worker-1") && info.ends_with('\n'),
        "{info}"
    );

    // CLIENT REPLY OFF: nothing comes back until ON, which answers OK.
    c.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send(&[b"SET", b"quiet", b"1"]);
    c.send(&[b"CLIENT", b"REPLY", b"ON"]);
    assert_eq!(c.read_reply(), Reply::ok());
    // SKIP drops exactly the next reply.
    c.send(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send(&[b"GET", b"quiet"]);
    c.send(&[b"PING"]);
    assert_eq!(c.read_reply(), Reply::simple("PONG"));
    assert_eq!(c.cmd_str("GET quiet"), Reply::bulk("1"));
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let server = Server::start(&["--io_threads", "2", "--timeout", "1"]);
    let mut c = server.conn();
    assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
    let start = Instant::now();
    assert!(
        c.wait_closed(Duration::from_secs(10)).is_some(),
        "idle client was not closed"
    );
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[test]
fn maxclients_refuses_extra_connections() {
    let server = Server::start(&["--io_threads", "2", "--maxclients", "3"]);
    // Open connections one by one until the server refuses one (the start-up probe may
    // still hold a slot for a moment, so up to 3 succeed).
    let mut kept: Vec<RawConn> = Vec::new();
    let mut refused = None;
    for _ in 0..5 {
        let mut c = RawConn::connect(server.port);
        c.send_raw(b"PING\r\n");
        match c.read_reply() {
            Reply::Simple(s) if s == "PONG" => kept.push(c),
            other => {
                refused = Some(other);
                break;
            }
        }
    }
    assert!(
        !kept.is_empty() && kept.len() <= 3,
        "{} accepted",
        kept.len()
    );
    assert_eq!(
        refused.expect("no connection was refused"),
        Reply::err("ERR max number of clients reached")
    );
    kept.clear();
    // Slots free up once clients leave.
    let ok = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let mut c = RawConn::connect(server.port);
        c.set_read_timeout(Duration::from_secs(2));
        c.try_send_raw(b"PING\r\n").is_ok()
            && matches!(c.try_read_reply_raw(), Ok((Reply::Simple(ref s), _)) if s == "PONG")
    });
    assert!(ok, "no connection accepted after clients left");
}

#[test]
fn info_has_the_fields_clients_wait_for() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    c.cmd_str("SET a 1");
    c.cmd_str("SET b 2 EX 100");
    let info = bulk_text(&c.cmd_str("INFO"));
    for field in [
        "# Server\r\n",
        "redis_version:7.0.15\r\n",
        "# Clients\r\n",
        "connected_clients:",
        "# Memory\r\n",
        "used_memory:",
        "maxmemory:0\r\n",
        "# Persistence\r\n",
        "loading:0\r\n",
        "# Stats\r\n",
        "total_commands_processed:",
        "keyspace_hits:",
        "# Keyspace\r\n",
        "db0:keys=2,expires=1,avg_ttl=",
    ] {
        assert!(info.contains(field), "INFO lacks {field:?}:\n{info}");
    }
    // avg_ttl estimates the time to live of keys with a TTL in ms (b: 100 s).
    let avg_ttl: u64 = info
        .split("avg_ttl=")
        .nth(1)
        .and_then(|r| r.split("\r\n").next())
        .and_then(|v| v.parse().ok())
        .expect("avg_ttl value");
    assert!((90_000..=100_000).contains(&avg_ttl), "avg_ttl {avg_ttl}");
    assert!(
        !info.contains("# Commandstats"),
        "commandstats is not a default section"
    );
    let stats = bulk_text(&c.cmd_str("INFO commandstats"));
    assert!(stats.contains("cmdstat_set:calls=2"), "{stats}");
    let one = bulk_text(&c.cmd_str("INFO keyspace"));
    assert!(
        one.starts_with("# Keyspace\r\n") && !one.contains("# Server"),
        "{one}"
    );
}

#[test]
fn config_set_reaches_every_shard_and_rejects_bad_values() {
    let server = Server::start(&["--io_threads", "3"]);
    let mut a = server.conn();
    assert_eq!(a.cmd_str("CONFIG SET maxmemory 100mb"), Reply::ok());
    // Clients on other shards see the new value.
    for _ in 0..6 {
        let mut b = server.conn();
        let r = b.cmd_str("CONFIG GET maxmemory");
        assert_eq!(
            r,
            Reply::array(vec![Reply::bulk("maxmemory"), Reply::bulk("104857600")])
        );
    }
    let bad = a.cmd_str("CONFIG SET hz notanumber");
    assert!(bad.is_error(), "{bad:?}");
    assert_eq!(
        a.cmd_str("CONFIG GET hz"),
        Reply::array(vec![Reply::bulk("hz"), Reply::bulk("10")])
    );
    assert_eq!(a.cmd_str("CONFIG RESETSTAT"), Reply::ok());
}

#[test]
fn command_count_info_and_getkeys() {
    let server = Server::start(&["--io_threads", "1"]);
    let mut c = server.conn();
    let n = c.cmd_str("COMMAND COUNT").as_int();
    assert!(n > 60, "COMMAND COUNT = {n}");
    let info = c.cmd_str("COMMAND INFO get nosuchcommand");
    let items = info.as_array();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_array()[0], Reply::bulk("get"));
    assert_eq!(items[0].as_array()[1], Reply::Int(2));
    assert_eq!(items[1], Reply::Array(None));
    assert_eq!(
        c.cmd_str("COMMAND GETKEYS MSET a 1 b 2"),
        Reply::array(vec![Reply::bulk("a"), Reply::bulk("b")])
    );
    assert!(c.cmd_str("COMMAND GETKEYS PING").is_error());
}

#[test]
fn hello_3_switches_to_resp3_replies() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    match c.cmd_str("HELLO 3") {
        Reply::Map(pairs) => {
            assert!(pairs.contains(&(Reply::bulk("proto"), Reply::Int(3))));
            assert!(pairs.contains(&(Reply::bulk("version"), Reply::bulk("7.0.15"))));
        }
        other => panic!("HELLO 3 answered {other:?}"),
    }
    assert_eq!(c.cmd_str("GET missing"), Reply::Null);
    match c.cmd_str("CONFIG GET port") {
        Reply::Map(pairs) => assert_eq!(pairs.len(), 1),
        other => panic!("CONFIG GET in RESP3 answered {other:?}"),
    }
    assert_eq!(
        c.cmd_str("HELLO 4"),
        Reply::err("NOPROTO unsupported protocol version")
    );
    match c.cmd_str("HELLO 2") {
        Reply::Array(Some(_)) => {}
        other => panic!("HELLO 2 answered {other:?}"),
    }
    assert_eq!(c.cmd_str("GET missing"), Reply::Bulk(None));
}

#[test]
fn debug_sleep_blocks_only_for_its_duration() {
    let server = Server::start(&["--io_threads", "1"]);
    let mut c = server.conn();
    let start = Instant::now();
    assert_eq!(c.cmd_str("DEBUG SLEEP 0.3"), Reply::ok());
    assert!(start.elapsed() >= Duration::from_millis(290));
    assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
}

#[test]
fn shutdown_nosave_stops_the_server() {
    let mut server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(
        c.wait_closed(Duration::from_secs(10)).is_some(),
        "connection stayed open"
    );
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            server.has_exited()
        }),
        "server still running after SHUTDOWN NOSAVE"
    );
}
