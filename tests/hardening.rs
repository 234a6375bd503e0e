//! Hostile input, limits and authentication against the real binary: protocol limits
//! (4 GB bulk length, endless inline line, `proto-max-bulk-len` changed at run time),
//! the query buffer limit, output buffer limits for a subscriber and a MONITOR that stop
//! reading, a client that pipelines without reading, `maxclients`, `--requirepass` with
//! AUTH / HELLO AUTH / ACL and the failure counters, protected mode, deeply nested
//! script replies, and running out of file descriptors. docs/reliability.md lists them.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Resident memory of `pid` in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Sends `bytes` on a fresh connection and returns everything the server answers
/// before it closes (panics if it does not close within 10 s).
fn answer_and_close(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut c = RawConn::connect(port);
    c.send_raw(bytes);
    c.wait_closed(Duration::from_secs(10))
        .expect("the server should close the connection")
}

#[test]
fn protocol_limits_answer_like_redis_and_close() {
    let s = Server::start(&["--io_threads", "1"]);
    let cases: [(&[u8], &[u8]); 5] = [
        (
            b"*1\r\n$4294967296\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"SET \"a\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            answer_and_close(s.port, input),
            want.to_vec(),
            "input {}",
            escape_bytes(input)
        );
    }
    // An endless line with no newline: refused once it passes 64 KiB.
    let mut c = RawConn::connect(s.port);
    let line = vec![b'a'; 200 * 1024];
    let _ = c.try_send_raw(&line);
    let got = c.wait_closed(Duration::from_secs(10)).expect("closed");
    assert_eq!(
        got,
        b"-ERR Protocol error: too big inline request\r\n".to_vec()
    );
    // proto-max-bulk-len changed at run time applies to the next request, also on a
    // connection that was already open.
    let mut open = s.conn();
    assert_eq!(open.cmd_str("PING"), Reply::simple("PONG"));
    let mut admin = s.conn();
    assert_eq!(
        admin.cmd_str("CONFIG SET proto-max-bulk-len 1mb"),
        Reply::ok()
    );
    open.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    let got = open.wait_closed(Duration::from_secs(10)).expect("closed");
    assert_eq!(
        got,
        b"-ERR Protocol error: invalid bulk length\r\n".to_vec()
    );
    assert_eq!(admin.cmd_str("PING"), Reply::simple("PONG"));
}

#[test]
fn query_buffer_limit_closes_a_client_with_an_endless_bulk() {
    let s = Server::start(&["--io_threads", "1", "--client-query-buffer-limit", "1mb"]);
    let pid = s.pid().expect("pid");
    let before = rss_mib(pid);
    // A bulk announced at 500 MB (under proto-max-bulk-len) whose bytes keep coming.
    let mut c = RawConn::connect(s.port);
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        if c.try_send_raw(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(
        sent < 64 << 20,
        "the server should have closed the connection after about 1 MB, not read {sent} bytes"
    );
    let mut other = s.conn();
    assert_eq!(other.cmd_str("EXISTS k"), Reply::Int(0));
    assert!(
        rss_mib(pid) < before + 32,
        "memory grew from {before} MiB to {} MiB",
        rss_mib(pid)
    );
    assert!(s.log().contains("max query buffer"), "log: {}", s.log());
}

/// Floods `channel` with ~`total` bytes of PUBLISH from `publisher`, in pipelined
/// batches; returns the receiver counts of the last batch.
fn flood_publish(publisher: &mut RawConn, channel: &str, total: usize) -> i64 {
    let msg = vec![b'm'; 16 * 1024];
    let batch = 64;
    let mut last = -1;
    for _ in 0..total / (msg.len() * batch) {
        let mut bytes = Vec::new();
        for _ in 0..batch {
            bytes.extend_from_slice(&encode_command(&[b"PUBLISH", channel.as_bytes(), &msg]));
        }
        publisher.send_raw(&bytes);
        for _ in 0..batch {
            last = publisher.read_reply().as_int();
        }
    }
    last
}

/// A socket that reads nothing, with a small receive buffer.
fn lazy_socket(port: u16) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.into()
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected() {
    let s = Server::start(&["--io_threads", "2"]);
    let pid = s.pid().expect("pid");
    let mut admin = s.conn();
    assert_eq!(
        admin.cmd(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"pubsub 1mb 256kb 60"
        ]),
        Reply::ok()
    );
    let mut sub = lazy_socket(s.port);
    sub.write_all(b"SUBSCRIBE ch\r\n").unwrap();
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || { admin.cmd_str("PUBSUB NUMSUB ch").as_array()[1].as_int() == 1 }
    ));
    let before = rss_mib(pid);
    // 64 MiB published, far more than kernel buffers plus the 1 MiB limit.
    let last = flood_publish(&mut admin, "ch", 64 << 20);
    assert_eq!(last, 0, "the subscriber should be gone");
    assert_eq!(
        admin.cmd_str("PUBSUB NUMSUB ch").as_array()[1],
        Reply::Int(0)
    );
    let after = rss_mib(pid);
    assert!(
        after < before + 48,
        "memory grew from {before} to {after} MiB"
    );
    assert!(s.log().contains("overcoming of output buffer limits"));
    drop(sub);
}

#[test]
fn soft_output_limit_applies_after_its_seconds() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut admin = s.conn();
    assert_eq!(
        admin.cmd(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"pubsub 0 512kb 3"
        ]),
        Reply::ok()
    );
    let mut sub = lazy_socket(s.port);
    sub.write_all(b"SUBSCRIBE ch\r\n").unwrap();
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || { admin.cmd_str("PUBSUB NUMSUB ch").as_array()[1].as_int() == 1 }
    ));
    // Over the soft limit, but not for 3 seconds yet: still subscribed.
    assert_eq!(flood_publish(&mut admin, "ch", 8 << 20), 1);
    std::thread::sleep(Duration::from_millis(3200));
    // Still over the soft limit 3 seconds later: the next message closes it.
    flood_publish(&mut admin, "ch", 1 << 20);
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || { admin.cmd_str("PUBSUB NUMSUB ch").as_array()[1].as_int() == 0 }
    ));
    drop(sub);
}

#[test]
fn a_monitor_that_stops_reading_is_disconnected() {
    let s = Server::start(&["--io_threads", "2"]);
    let pid = s.pid().expect("pid");
    let mut admin = s.conn();
    assert_eq!(
        admin.cmd(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"pubsub 1mb 256kb 60"
        ]),
        Reply::ok()
    );
    let mut mon = lazy_socket(s.port);
    mon.write_all(b"MONITOR\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_mib(pid);
    let value = vec![b'v'; 16 * 1024];
    for _ in 0..64 {
        let mut bytes = Vec::new();
        for _ in 0..64 {
            bytes.extend_from_slice(&encode_command(&[b"SET", b"k", &value]));
        }
        admin.send_raw(&bytes);
        for _ in 0..64 {
            assert_eq!(admin.read_reply(), Reply::ok());
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || s
            .log()
            .contains("overcoming of output buffer limits")),
        "log: {}",
        s.log()
    );
    let after = rss_mib(pid);
    assert!(
        after < before + 48,
        "memory grew from {before} to {after} MiB"
    );
    let list = admin.cmd_str("CLIENT LIST");
    assert!(
        !String::from_utf8_lossy(list.as_bytes()).contains("cmd=monitor"),
        "{list:?}"
    );
    drop(mon);
}

#[test]
fn a_client_that_pipelines_without_reading_costs_bounded_memory() {
    let s = Server::start(&["--io_threads", "1"]);
    let pid = s.pid().expect("pid");
    let mut admin = s.conn();
    let big = vec![b'b'; 100 * 1024];
    assert_eq!(admin.cmd(&[b"SET", b"big", &big]), Reply::ok());
    let before = rss_mib(pid);
    // 20,000 GETs of a 100 KiB value = 2 GB of replies nobody reads.
    let mut lazy = lazy_socket(s.port);
    lazy.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let one = encode_command(&[b"GET", b"big"]);
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    for _ in 0..20 {
        if lazy.write_all(&batch).is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_mib(pid);
    assert!(
        after < before + 200,
        "memory grew from {before} to {after} MiB"
    );
    // Other clients are still served.
    assert_eq!(admin.cmd_str("PING"), Reply::simple("PONG"));
    drop(lazy);
    // And the memory comes back once it is gone.
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            admin
                .cmd_str("CLIENT LIST")
                .as_bytes()
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
                == 1
        }
    ));
}

#[test]
fn maxclients_refuses_with_redis_error() {
    let s = Server::start(&["--io_threads", "1", "--maxclients", "2"]);
    // Let the start-up probe's connection go away first.
    std::thread::sleep(Duration::from_millis(300));
    let mut a = s.conn();
    let mut b = s.conn();
    assert_eq!(a.cmd_str("PING"), Reply::simple("PONG"));
    assert_eq!(b.cmd_str("PING"), Reply::simple("PONG"));
    let got = answer_and_close(s.port, b"");
    assert_eq!(got, b"-ERR max number of clients reached\r\n".to_vec());
    drop(b);
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || {
            let mut c = RawConn::connect(s.port);
            c.set_read_timeout(Duration::from_secs(2));
            c.send_raw(b"PING\r\n");
            matches!(c.try_read_reply(), Ok(Reply::Simple(ref p)) if p == "PONG")
        }
    ));
    let rejected: u64 = info_field(&mut a, "stats", "rejected_connections")
        .parse()
        .unwrap();
    assert!(rejected >= 1);
}

#[test]
fn requirepass_auth_hello_acl_and_counters() {
    let s = Server::start(&["--io_threads", "2", "--requirepass", "s3cret"]);
    let mut c = s.conn();
    let noauth = Reply::err("NOAUTH Authentication required.");
    assert_eq!(c.cmd_str("PING"), noauth);
    assert_eq!(c.cmd_str("GET k"), noauth);
    assert_eq!(c.cmd_str("ACL WHOAMI"), noauth);
    // A refused EXEC is an EXECABORT, as in Redis.
    assert_eq!(
        c.cmd_str("EXEC"),
        Reply::err("EXECABORT Transaction discarded because of: NOAUTH Authentication required.")
    );
    assert_eq!(
        c.cmd_str("HELLO 3"),
        Reply::err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
    );
    let wrongpass = Reply::err("WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(c.cmd_str("AUTH wrong"), wrongpass);
    assert_eq!(c.cmd_str("AUTH default wrong"), wrongpass);
    assert_eq!(c.cmd_str("AUTH someone s3cret"), wrongpass);
    assert_eq!(c.cmd_str("HELLO 2 AUTH default nope"), wrongpass);
    assert_eq!(c.cmd_str("AUTH a b c"), Reply::err("ERR syntax error"));
    assert_eq!(c.cmd_str("QUIT"), Reply::ok());
    // HELLO AUTH authenticates.
    let mut h = s.conn();
    let hello = h.cmd_str("HELLO 3 AUTH default s3cret");
    assert!(matches!(hello, Reply::Map(_)), "{hello:?}");
    assert_eq!(h.cmd_str("ACL WHOAMI"), Reply::bulk("default"));
    // AUTH with and without the user name.
    let mut a = s.conn();
    assert_eq!(a.cmd_str("AUTH s3cret"), Reply::ok());
    let mut b = s.conn();
    assert_eq!(b.cmd_str("AUTH default s3cret"), Reply::ok());
    assert_eq!(
        b.cmd_str("ACL USERS"),
        Reply::array(vec![Reply::bulk("default")])
    );
    let list = b.cmd_str("ACL LIST");
    let text = String::from_utf8_lossy(list.as_array()[0].as_bytes()).to_string();
    assert!(
        text.starts_with("user default on #") && text.ends_with(" ~* &* +@all") && text.len() == 93,
        "{text}"
    );
    assert_eq!(
        b.cmd_str("ACL WHOAMI x"),
        Reply::err("ERR wrong number of arguments for 'acl|whoami' command")
    );
    assert_eq!(
        b.cmd_str("ACL SETUSER bob on"),
        Reply::err("ERR unknown subcommand 'SETUSER'. Try ACL HELP.")
    );
    // Four failures (AUTH x3, HELLO AUTH x1), summed over shards, in INFO and metrics.
    assert_eq!(info_field(&mut b, "stats", "acl_access_denied_auth"), "4");
    let metrics_ok = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        let mut m = RawConn::connect(s.port);
        m.send_raw(b"GET /metrics HTTP/1.0\r\n\r\n");
        let body = m.wait_closed(Duration::from_secs(5)).unwrap_or_default();
        let body = String::from_utf8_lossy(&body).to_string();
        let total: f64 = body
            .lines()
            .filter(|l| l.starts_with("libellule_auth_failures_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        total == 4.0
    });
    assert!(metrics_ok, "libellule_auth_failures_total should reach 4");
}

#[test]
fn acl_for_the_default_user_without_password() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("ACL WHOAMI"), Reply::bulk("default"));
    assert_eq!(
        c.cmd_str("ACL LIST"),
        Reply::array(vec![Reply::bulk("user default on nopass ~* &* +@all")])
    );
    assert_eq!(
        c.cmd_str("AUTH x"),
        Reply::err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
    );
    assert_eq!(
        c.cmd_str("ACL"),
        Reply::err("ERR wrong number of arguments for 'acl' command")
    );
}

/// A non-loopback IPv4 address of this machine, if it has one.
fn non_loopback_ip() -> Option<std::net::Ipv4Addr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connect only picks the route's source address.
    sock.connect("192.0.2.1:9").ok()?;
    match sock.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

#[test]
fn protected_mode_denies_non_loopback_clients_without_password() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: no non-loopback address on this machine");
        return;
    };
    let denied = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";
    let remote = |port: u16| {
        let mut st = TcpStream::connect((ip, port)).expect("connect to the non-loopback address");
        st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        st.write_all(b"PING\r\n").unwrap();
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut st, &mut out);
        out
    };
    let port = free_port();
    let bind = format!("127.0.0.1 {ip}");
    let p = port.to_string();
    let s = Server::start_exact(port, &["--port", &p, "--bind", &bind, "--io_threads", "1"]);
    assert_eq!(remote(port), format!("-{denied}\r\n").into_bytes());
    // Loopback clients are served; they may switch protected mode off at run time.
    let mut local = s.conn();
    assert_eq!(local.cmd_str("PING"), Reply::simple("PONG"));
    assert_eq!(info_field(&mut local, "stats", "rejected_connections"), "1");
    assert_eq!(local.cmd_str("CONFIG SET protected-mode no"), Reply::ok());
    let mut st = TcpStream::connect((ip, port)).unwrap();
    st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    st.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    std::io::Read::read_exact(&mut st, &mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    drop(s);
    // With a password, non-loopback clients get NOAUTH instead of DENIED.
    let port = free_port();
    let p = port.to_string();
    let _s = Server::start_exact(
        port,
        &[
            "--port",
            &p,
            "--bind",
            &bind,
            "--io_threads",
            "1",
            "--requirepass",
            "pw",
        ],
    );
    let mut st = TcpStream::connect((ip, port)).unwrap();
    st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    st.write_all(b"PING\r\n").unwrap();
    let mut buf = vec![0u8; b"-NOAUTH Authentication required.\r\n".len()];
    std::io::Read::read_exact(&mut st, &mut buf).unwrap();
    assert_eq!(buf, b"-NOAUTH Authentication required.\r\n".to_vec());
    // And `--protected-mode no` lets them in from the start.
    let port = free_port();
    let p = port.to_string();
    let _s = Server::start_exact(
        port,
        &[
            "--port",
            &p,
            "--bind",
            &bind,
            "--io_threads",
            "1",
            "--protected-mode",
            "no",
        ],
    );
    let mut st = TcpStream::connect((ip, port)).unwrap();
    st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    st.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    std::io::Read::read_exact(&mut st, &mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

#[test]
fn deeply_nested_script_replies_do_not_crash() {
    // The client parses replies recursively: give it room for 8000 levels.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(nested_script_replies)
        .unwrap()
        .join()
        .unwrap();
}

/// Depth of nested aggregates along the first elements, and the first non-aggregate.
fn first_path(r: &Reply) -> (usize, Reply) {
    let (mut depth, mut cur) = (0, r);
    loop {
        let next = match cur {
            Reply::Array(Some(items)) | Reply::Set(items) => items.first(),
            Reply::Map(pairs) => pairs.first().map(|(_, v)| v),
            _ => return (depth, cur.clone()),
        };
        depth += 1;
        match next {
            Some(n) => cur = n,
            None => return (depth, Reply::Null),
        }
    }
}

/// Scripts returning tables nested `n` deep: arrays, RESP3 maps, RESP3 sets.
fn nested_script(kind: &str, n: usize) -> String {
    match kind {
        "array" => format!("local t={{}} local c=t for i=1,{n} do local x={{}} c[1]=x c=x end c[1]='leaf' return t"),
        "map" => format!("redis.setresp(3) local t={{}} local c=t for i=1,{n} do local x={{}} c.map={{k=x}} c=x end c[1]='leaf' return t"),
        _ => format!("redis.setresp(3) local t={{}} local c=t for i=1,{n} do local x={{}} c.set={{}} c.set[x]=true c=x end c[1]='leaf' return t"),
    }
}

fn nested_script_replies() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut c = s.conn();
    let limit = Reply::err("ERR reached lua stack limit");
    // RESP3, so that maps stay maps.
    c.send(&[b"HELLO", b"3"]);
    let _ = c.read_reply();
    // Redis 7.0.15's limits (Lua's 8000-slot stack, 4 slots checked per value; an
    // array level takes 1 slot, a map or set level 3): arrays 7995 deep, maps and
    // sets 2665; the value past the limit becomes the error, even a string.
    for (kind, n, depth, leaf) in [
        ("array", 7993, 7994, Reply::bulk("leaf")),
        ("array", 7994, 7995, limit.clone()),
        ("array", 100_000, 7995, limit.clone()),
        ("map", 2664, 2665, Reply::bulk("leaf")),
        ("map", 2665, 2665, limit.clone()),
        ("set", 2664, 2665, Reply::bulk("leaf")),
        ("set", 50_000, 2665, limit.clone()),
    ] {
        let script = nested_script(kind, n);
        let r = c.cmd(&[b"EVAL", script.as_bytes(), b"0"]);
        assert_eq!(first_path(&r), (depth, leaf), "{kind} {n}");
    }
    // Wide replies are whole (Libellule once cut every script reply at ~7990 elements:
    // the Lua references it held ran out).
    let r = c.cmd(&[
        b"EVAL",
        b"local t={} for i=1,20000 do t[i]={i} end return t",
        b"0",
    ]);
    assert_eq!(r.as_array().len(), 20000);
    assert_eq!(r.as_array()[19999], Reply::array(vec![Reply::Int(20000)]));
    // A table that contains itself.
    let r = c.cmd(&[b"EVAL", b"local t={} t[1]=t return t", b"0"]);
    assert_eq!(first_path(&r), (7995, limit.clone()));
    // The same bytes as redis-server, in RESP2 and RESP3, also for a wide reply with
    // deep and shallow siblings.
    let Some(r) = RedisServer::start() else {
        eprintln!("redis-server not available: checked the recorded depths only");
        return;
    };
    let mut b = r.conn();
    let wide = "local t={} local c=t for i=1,8100 do local x={} c[1]=x c[2]='s' c=x end return {t, 'after', {ok='fine'}}";
    for proto in ["2", "3"] {
        for conn in [&mut c, &mut b] {
            conn.send(&[b"HELLO", proto.as_bytes()]);
            let _ = conn.read_reply();
        }
        let mut scripts: Vec<String> =
            [("array", 7994), ("map", 2665), ("set", 2665), ("map", 2000)]
                .iter()
                .map(|(k, n)| nested_script(k, *n))
                .collect();
        scripts.push(wide.to_string());
        scripts.push("local t={} for i=1,30000 do t[i]={i,'x'} end return t".to_string());
        for script in &scripts {
            c.send(&[b"EVAL", script.as_bytes(), b"0"]);
            b.send(&[b"EVAL", script.as_bytes(), b"0"]);
            let (_, ours) = c.read_reply_raw();
            let (_, theirs) = b.read_reply_raw();
            assert!(ours == theirs, "RESP{proto}: {}", &script[..60]);
        }
    }
    assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
}

/// Libellule started under `prlimit --nofile=N:N` (io_uring reads the descriptor
/// limit when an accept is armed, so it must be low from the start). Killed on drop.
struct LimitedServer {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: ScratchDir,
}

impl LimitedServer {
    fn start(nofile: usize) -> LimitedServer {
        let dir = ScratchDir::new("nofile");
        let port = free_port();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg(libellule_bin())
            .args(["--port", &port.to_string(), "--io_threads", "1", "--dir"])
            .arg(dir.path())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn prlimit");
        let up = wait_until(STARTUP_TIMEOUT, Duration::from_millis(50), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut st| {
                st.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 7];
                st.write_all(b"PING\r\n").is_ok()
                    && std::io::Read::read_exact(&mut st, &mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
            })
        });
        assert!(
            up,
            "server did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        LimitedServer {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn out_of_file_descriptors_keeps_serving_and_logs_once_a_second() {
    if !on_path("prlimit") {
        eprintln!("skipped: prlimit not found");
        return;
    }
    let s = LimitedServer::start(48);
    let mut first = RawConn::connect(s.port);
    assert_eq!(first.cmd_str("SET k v"), Reply::ok());
    // Connections past the limit stay in the listen backlog, unanswered.
    let start = Instant::now();
    let mut extra = Vec::new();
    for _ in 0..80 {
        let mut c = RawConn::connect(s.port);
        c.set_read_timeout(Duration::from_millis(300));
        c.send_raw(b"PING\r\n");
        extra.push(c);
    }
    let mut answered = 0;
    for c in extra.iter_mut() {
        if c.try_read_reply().is_ok() {
            answered += 1;
        }
    }
    assert!(
        answered > 0 && answered < 80,
        "{answered} of 80 answered: the limit did not apply"
    );
    // Existing clients keep being served while accept fails.
    for _ in 0..20 {
        assert_eq!(first.cmd_str("GET k"), Reply::bulk("v"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = start.elapsed().as_secs() + 1;
    let log = s.log();
    let logged = log.matches("accept failed").count() as u64;
    assert!(logged >= 1, "nothing logged: {log}");
    assert!(
        logged <= elapsed + 1,
        "{logged} accept failures logged in {elapsed} s:\n{log}"
    );
    // Once descriptors free up, waiting connections are accepted and answered.
    drop(extra);
    let mut late = RawConn::connect(s.port);
    late.set_read_timeout(Duration::from_secs(10));
    assert_eq!(late.cmd_str("GET k"), Reply::bulk("v"));
}

#[test]
fn maxmemory_clients_evicts_the_biggest_client() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut admin = s.conn();
    assert_eq!(admin.cmd_str("CLIENT NO-EVICT on"), Reply::ok());
    assert_eq!(
        admin.cmd_str("CONFIG SET maxmemory-clients 4mb"),
        Reply::ok()
    );
    let mut small = s.conn();
    assert_eq!(small.cmd_str("PING"), Reply::simple("PONG"));
    // A bulk announced at 500 MB whose bytes keep coming: its query buffer passes
    // the 4 MB shared by all clients long before it is complete (the check runs from
    // the shard's timer, which a loaded machine may delay: a 100 MB bulk was once read
    // whole before it fired).
    let mut big = RawConn::connect(s.port);
    big.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if big.try_send_raw(&chunk).is_err() {
            break;
        }
    }
    assert!(
        big.wait_closed(Duration::from_secs(10)).is_some(),
        "the biggest client should have been evicted"
    );
    assert!(s.log().contains("Evicting client"), "{}", s.log());
    // The small client and the NO-EVICT one stay.
    assert_eq!(small.cmd_str("PING"), Reply::simple("PONG"));
    assert_eq!(admin.cmd_str("EXISTS k"), Reply::Int(0));
    // Off again: nothing is evicted.
    assert_eq!(admin.cmd_str("CONFIG SET maxmemory-clients 0"), Reply::ok());
    let v = vec![b'v'; 8 << 20];
    assert_eq!(small.cmd(&[b"SET", b"k", &v]), Reply::ok());
}

/// Before AUTH, Redis 7.0 checks the command name, its arity, and for a container
/// command the subcommand and the subcommand's arity, and only then answers NOAUTH
/// (`processCommand`). Compared with redis-server run with the same password.
#[test]
fn container_subcommands_before_auth_answer_like_redis() {
    let s = Server::start(&["--requirepass", "s3cret"]);
    let mut a = s.conn();
    assert_eq!(
        a.cmd_str("ACL FOO"),
        Reply::err("ERR unknown subcommand 'FOO'. Try ACL HELP.")
    );
    assert_eq!(
        a.cmd_str("CONFIG GET"),
        Reply::err("ERR wrong number of arguments for 'config|get' command")
    );
    assert_eq!(
        a.cmd_str("ACL WHOAMI"),
        Reply::err("NOAUTH Authentication required.")
    );
    let Some(r) = RedisServer::start_with(&["--requirepass", "s3cret"]) else {
        eprintln!("redis-server not available: checked the recorded replies only");
        return;
    };
    let cases = [
        "ACL FOO",
        "acl foo",
        "ACL WHOAMI",
        "ACL WHOAMI x",
        "ACL LIST",
        "ACL USERS extra",
        "ACL HELP",
        "ACL SETUSER bob on",
        "ACL",
        "CONFIG FOO",
        "CONFIG GET",
        "CONFIG GET maxmemory",
        "CONFIG SET a",
        "CLIENT FOO",
        "CLIENT SETNAME",
        "CLIENT ID",
        "OBJECT FOO",
        "OBJECT ENCODING",
        "MEMORY FOO",
        "MEMORY USAGE",
        "XINFO FOO",
        "XINFO STREAM",
        "XGROUP FOO",
        "SCRIPT FOO",
        "SCRIPT LOAD",
        "PUBSUB FOO",
        "COMMAND FOO",
        "COMMAND COUNT x",
        "GET",
        "GET k",
        "FOO bar",
        "PING",
    ];
    let mut b = r.conn();
    for c in cases {
        assert_eq!(a.cmd_str(c), b.cmd_str(c), "{c}");
    }
    // Still unauthenticated after all that.
    assert_eq!(
        a.cmd_str("GET k"),
        Reply::err("NOAUTH Authentication required.")
    );
}
