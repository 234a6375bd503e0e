//! Operations: systemd notifications, graceful shutdown, Prometheus metrics.

mod common;

use common::{free_port, ScratchDir, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Receives datagrams until one contains `want` or `timeout` passes; all received so far.
fn recv_until(sock: &UnixDatagram, want: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set_read_timeout");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l == want);
            got.push(msg);
            if done {
                break;
            }
        }
    }
    got
}

/// One HTTP/1.1 GET of `path` on `port`; the whole response (the server closes).
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read response");
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `GET /metrics` on `port` until the body contains every one of `want`.
fn metrics_containing(port: u16, want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http_get(port, "/metrics");
        if want.iter().all(|w| r.contains(w)) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn notify_ready_then_stopping_and_sigterm_exits_zero() {
    let dir = ScratchDir::new("notify");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    let mut server = Server::start_env(
        &["--io_threads", "2"],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    // The server answered PING: READY=1 has been sent.
    let got = recv_until(&sock, "READY=1", Duration::from_secs(5));
    assert!(
        got.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "no READY=1, got {got:?}; log:\n{}",
        server.log()
    );
    let mut c = server.conn();
    assert_eq!(c.cmd_str("SET k v"), common::Reply::ok());

    let start = Instant::now();
    server.signal(libc::SIGTERM);
    let got = recv_until(&sock, "STOPPING=1", Duration::from_secs(5));
    assert!(
        got.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "no STOPPING=1, got {got:?}"
    );
    let log = server.log();
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM; log:\n{}", server.log()));
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn notify_abstract_socket() {
    let name = format!("libellule-test-notify-{}", std::process::id());
    let addr = {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
    };
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
    let env = format!("@{name}");
    let _server = Server::start_env(&[], &[("NOTIFY_SOCKET", env.as_str())]);
    let got = recv_until(&sock, "READY=1", Duration::from_secs(5));
    assert!(
        got.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "got {got:?}"
    );
}

#[test]
fn sigint_exits_zero_without_notify_socket() {
    let mut server = Server::start(&[]);
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exited within 5 s");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn metrics_on_main_port_and_prometheus_port() {
    let prom = free_port();
    let prom_s = prom.to_string();
    let server = Server::start(&["--io_threads", "2", "--prometheus_port", &prom_s]);
    let mut c = server.conn();
    assert_eq!(c.cmd_str("SET a 1"), common::Reply::ok());
    c.cmd_str("GET a");
    c.cmd_str("GET missing");
    assert!(c.cmd_str("INCR a x").is_error());
    c.cmd_str("EXPIRE a 100");

    let want = [
        "libellule_commands_total{cmd=\"set\"",
        "libellule_command_errors_total{cmd=\"incr\"",
        "libellule_keys{db=\"0\"",
        "libellule_keys_with_expiry{db=\"0\"",
        "libellule_keyspace_hits_total",
        "libellule_build_info{version=",
        "libellule_uptime_seconds",
        "libellule_memory_rss_bytes",
        "libellule_maxmemory_bytes",
        "libellule_connected_clients",
        "libellule_errors_total{type=\"ERR\"",
        "# HELP libellule_commands_total",
    ];
    let main = metrics_containing(server.port, &want);
    assert!(main.starts_with("HTTP/1.1 200 OK\r\n"), "{main}");
    for w in want {
        assert!(main.contains(w), "main port /metrics lacks {w}:\n{main}");
    }
    let exporter = metrics_containing(prom, &want);
    assert!(exporter.starts_with("HTTP/1.1 200"), "{exporter}");
    for w in want {
        assert!(exporter.contains(w), "exporter lacks {w}:\n{exporter}");
    }
    // The server still works, and GET /metrics is a Redis command when not first.
    let mut c = server.conn();
    assert_eq!(c.cmd_str("PING"), common::Reply::simple("PONG"));
    c.send_raw(b"GET /metrics HTTP/1.1\r\n");
    let r = c.read_reply();
    assert!(
        r.error_text()
            .unwrap_or("")
            .contains("wrong number of arguments"),
        "{r:?}"
    );
    // An inline GET of a key as first request stays a Redis command.
    let mut c = server.conn();
    c.send_raw(b"GET /metricsx\r\n");
    assert_eq!(c.read_reply(), common::Reply::nil());
}

#[test]
fn metrics_on_main_port_without_exporter() {
    let server = Server::start(&[]);
    let r = metrics_containing(server.port, &["libellule_build_info"]);
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("libellule_build_info"), "{r}");
}

/// The `cmd="<cmd>",le="+Inf"` bucket of `cmd` summed over shards in a metrics body.
fn latency_inf_count(body: &str, cmd: &str) -> u64 {
    let prefix = format!("libellule_command_latency_seconds_bucket{{cmd=\"{cmd}\",le=\"+Inf\"");
    body.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn latency_tracking_feeds_info_and_metrics_and_can_be_turned_off() {
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    // Keys on both shards, some run by the other shard, and a cross-shard MGET.
    for i in 0..50 {
        c.cmd_str(&format!("SET k{i} v"));
        c.cmd_str(&format!("GET k{i}"));
    }
    c.cmd_str("MGET k1 k2 k3 k4 k5 k6");
    let info = c.cmd_str("INFO latencystats").as_text();
    assert!(info.starts_with("# Latencystats\r\n"), "{info}");
    for cmd in ["get", "set", "mget"] {
        let line = info
            .lines()
            .find(|l| l.starts_with(&format!("latency_percentiles_usec_{cmd}:")))
            .unwrap_or_else(|| panic!("no {cmd} line in {info}"));
        assert!(
            line.contains(":p50=") && line.contains(",p99=") && line.contains(",p99.9="),
            "{line}"
        );
    }
    // commandstats usec now comes from the same clocks.
    let stats = c.cmd_str("INFO commandstats").as_text();
    let get = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_get:"))
        .expect("get stats");
    assert!(get.starts_with("cmdstat_get:calls=50,usec="), "{get}");
    // Every timed GET is in the histogram exactly once (+Inf bucket over both shards).
    let body = metrics_containing(
        server.port,
        &["libellule_command_latency_seconds_bucket{cmd=\"get\""],
    );
    assert!(
        body.contains("# TYPE libellule_command_latency_seconds_bucket counter"),
        "{body}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut body = body;
    while latency_inf_count(&body, "get") != 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(150));
        body = http_get(server.port, "/metrics");
    }
    assert_eq!(latency_inf_count(&body, "get"), 50, "{body}");

    // Off: calls are still counted, nothing more is timed.
    assert_eq!(
        c.cmd_str("CONFIG SET latency-tracking no"),
        common::Reply::ok()
    );
    for _ in 0..10 {
        c.cmd_str("GET k1");
    }
    std::thread::sleep(Duration::from_millis(300));
    let body = http_get(server.port, "/metrics");
    assert_eq!(latency_inf_count(&body, "get"), 50, "{body}");
    let stats = c.cmd_str("INFO commandstats").as_text();
    assert!(stats.contains("cmdstat_get:calls=60,"), "{stats}");
    // CONFIG RESETSTAT empties the histograms.
    assert_eq!(c.cmd_str("CONFIG RESETSTAT"), common::Reply::ok());
    let info = c.cmd_str("INFO latencystats").as_text();
    assert!(!info.contains("latency_percentiles_usec_get"), "{info}");
}

#[test]
fn pipelined_commands_are_each_timed_once() {
    // One pipeline: every command's start is the previous one's end; a refused command
    // (wrong arity) in the middle is not timed and does not disturb the others.
    let server = Server::start(&["--io_threads", "1"]);
    let mut c = server.conn();
    let mut req = Vec::new();
    for i in 0..100 {
        req.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$3\r\nk{:02}\r\n", i).as_bytes());
        if i == 50 {
            req.extend_from_slice(b"*1\r\n$3\r\nGET\r\n");
        }
    }
    c.send_raw(&req);
    for i in 0..101 {
        let r = c.read_reply();
        if i == 51 {
            assert!(r.error_text().is_some(), "{r:?}");
        } else {
            assert_eq!(r, common::Reply::nil());
        }
    }
    let stats = c.cmd_str("INFO commandstats").as_text();
    assert!(
        stats.contains("cmdstat_get:calls=100,") && stats.contains("rejected_calls=1,"),
        "{stats}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut body = http_get(server.port, "/metrics");
    while latency_inf_count(&body, "get") != 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(150));
        body = http_get(server.port, "/metrics");
    }
    assert_eq!(latency_inf_count(&body, "get"), 100, "{body}");
    let info = c.cmd_str("INFO latencystats").as_text();
    for (p, usec) in latency_percentiles(&info, "get") {
        assert!(usec > 0.0 && usec < 10_000.0, "get {p}={usec} in {info}");
    }
}

/// The `p<pct>=<usec>` values of `cmd`'s INFO latencystats line.
fn latency_percentiles(info: &str, cmd: &str) -> Vec<(String, f64)> {
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("latency_percentiles_usec_{cmd}:")))
        .unwrap_or_else(|| panic!("no {cmd} line in {info}"));
    line.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("p<pct>=<usec>");
            (k.to_string(), v.parse().expect("usec"))
        })
        .collect()
}

#[test]
fn latency_percentiles_measure_a_slow_command() {
    // Redis 7.0.15 after one DEBUG SLEEP 0.05 reports
    // latency_percentiles_usec_debug:p50=50331.647,p99=50331.647,p99.9=50331.647 and
    // cmdstat_debug:calls=1,usec=50130,...; Libellule's buckets are 25% wide and report
    // their upper bound, so the 50 ms sleep shows between 50,000 and 62,500 us.
    let server = Server::start(&[]);
    let mut c = server.conn();
    for _ in 0..20 {
        c.cmd_str("PING");
    }
    assert_eq!(c.cmd_str("DEBUG SLEEP 0.05"), common::Reply::ok());
    let info = c.cmd_str("INFO latencystats").as_text();
    let debug = latency_percentiles(&info, "debug");
    let names: Vec<&str> = debug.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["p50", "p99", "p99.9"], "{info}");
    for (p, usec) in &debug {
        assert!((50_000.0..62_500.0).contains(usec), "{p}={usec} in {info}");
    }
    // Twenty PINGs are each far below a millisecond.
    for (p, usec) in latency_percentiles(&info, "ping") {
        assert!(usec > 0.0 && usec < 1_000.0, "ping {p}={usec} in {info}");
    }
    let stats = c.cmd_str("INFO commandstats").as_text();
    let line = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_debug:calls=1,usec="))
        .unwrap_or_else(|| panic!("{stats}"));
    let usec: u64 = line.split(',').next().unwrap().parse().unwrap();
    assert!((50_000..60_000).contains(&usec), "{line}");
    // The percentiles follow latency-tracking-info-percentiles.
    assert_eq!(
        c.cmd(&[
            b"CONFIG",
            b"SET",
            b"latency-tracking-info-percentiles",
            b"50 100"
        ]),
        common::Reply::ok()
    );
    let info = c.cmd_str("INFO latencystats").as_text();
    let debug = latency_percentiles(&info, "debug");
    assert_eq!(debug.len(), 2, "{info}");
    assert_eq!(debug[1].0, "p100", "{info}");
}

/// The metric names a dashboard's queries use (`libellule_...` words in every `expr`).
fn dashboard_metric_names(json: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in json
        .lines()
        .filter(|l| l.trim_start().starts_with("\"expr\""))
    {
        let mut rest = line;
        while let Some(at) = rest.find("libellule_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn grafana_dashboard_queries_only_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/monitoring/grafana-dashboard.json"
    );
    let json = std::fs::read_to_string(path).expect("dashboard");
    let names = dashboard_metric_names(&json);
    assert!(names.len() >= 15, "{names:?}");
    let server = Server::start(&["--io_threads", "2"]);
    let mut c = server.conn();
    c.cmd_str("SET a 1");
    c.cmd_str("GET a");
    c.cmd_str("GET nope");
    c.cmd_str("INCR a x");
    c.cmd_str("SET t 1 PX 1");
    let wanted: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let has = |body: &str, name: &str| {
        body.lines().any(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = http_get(server.port, "/metrics");
        if wanted.iter().all(|n| has(&body, n)) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for n in wanted {
        assert!(
            has(&body, n),
            "the dashboard queries {n}, which /metrics lacks:\n{body}"
        );
    }
}

/// `INFO commandstats` as name -> (calls, rejected, failed).
type CommandCounts = std::collections::BTreeMap<String, (u64, u64, u64)>;

/// `INFO commandstats` of a fresh server after `script`, and the command names
/// `INFO latencystats` lists.
fn command_counts(port: u16, script: &[&str]) -> (CommandCounts, Vec<String>) {
    let mut c = common::RawConn::connect(port);
    for line in script {
        c.cmd_str(line);
    }
    let field = |rest: &str, name: &str| -> u64 {
        rest.split(',')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {rest}"))
    };
    let mut counts = std::collections::BTreeMap::new();
    for line in c.cmd_str("INFO commandstats").as_text().lines() {
        if let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        {
            let n = (
                field(rest, "calls"),
                field(rest, "rejected_calls"),
                field(rest, "failed_calls"),
            );
            counts.insert(name.to_string(), n);
        }
    }
    // Redis lists them in its dictionary's order: compared as sets.
    let timed = c
        .cmd_str("INFO latencystats")
        .as_text()
        .lines()
        .filter_map(|l| l.strip_prefix("latency_percentiles_usec_")?.split_once(':'))
        .map(|(name, _)| name.to_string())
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    (counts, timed)
}

#[test]
fn commandstats_count_subcommands_as_redis_does() {
    // Redis 7 keeps container commands' statistics per subcommand (`cmdstat_config|get`),
    // rejected and failed calls included; compared with a real redis-server.
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let lib = Server::start(&["--io_threads", "1"]);
    let script = [
        "CONFIG RESETSTAT",
        "CONFIG GET maxmemory",
        "config get port",
        "CONFIG SET maxmemory-policy allkeys-lru",
        "SET k v",
        "OBJECT ENCODING k",
        "OBJECT FREQ k",
        "object encoding missing",
        "CONFIG FOO",
        "OBJECT",
        "CLIENT NOPE x",
        "CLIENT ID",
        "CLIENT SETNAME x",
        "CONFIG GET",
        "CONFIG",
        "GET k",
        "GET",
        "MEMORY USAGE k",
    ];
    let (want, want_timed) = command_counts(redis.port, &script);
    let (got, got_timed) = command_counts(lib.port, &script);
    assert!(want.contains_key("config|get"), "{want:?}");
    assert_eq!(got, want);
    assert_eq!(got_timed, want_timed);
}
