//! Prometheus metrics.
//!
//! The hot path never touches a metric: commands, errors, hits and bytes are counted in
//! each shard's own [`ShardStats`](crate::shard::ShardStats). Each shard's periodic task
//! (the `hz` timer, see [`crate::shard::runtime`]) hands those totals to a
//! [`ShardMetrics`], which publishes them as absolute values labelled `shard="<id>"`
//! through the `metrics` facade (at most ten times a second). Shard 0 also publishes the
//! process-wide figures (uptime, RSS, maxmemory).
//!
//! [`init`] installs the `metrics-exporter-prometheus` recorder. With
//! `--prometheus_port` set, its HTTP listener serves the text format on the first
//! `--bind` address and that port, from a dedicated thread running a current-thread tokio
//! runtime (the shards run glommio, not tokio). Whether or not that listener runs, the
//! main port answers an HTTP `GET /metrics` too (as Dragonfly does): see [`http_request`]
//! and [`http_response`], used by the connection code for a connection's first request.
//!
//! Counters are published with `absolute`, which only moves forward: after
//! `CONFIG RESETSTAT` they hold their value until the shard's own count passes it.

use crate::shard::{registry, ShardData};
use metrics::{Counter, Gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The handle that renders the text format; set by [`init`].
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Shortest interval between two publications by one shard.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Installs the global recorder and, when `port` is not 0, starts the HTTP exporter on
/// `ip:port`. Call once, before the shards start.
pub fn init(ip: IpAddr, port: u16) -> Result<(), String> {
    let builder = PrometheusBuilder::new();
    let recorder = if port == 0 {
        builder.build_recorder()
    } else {
        let addr = SocketAddr::new(ip, port);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("could not start the metrics runtime: {e}"))?;
        // build() binds the listener and spawns the recorder's upkeep task: it must run
        // inside the runtime.
        let (recorder, exporter) = {
            let _guard = runtime.enter();
            builder
                .with_http_listener(addr)
                .build()
                .map_err(|e| format!("could not listen on {addr} for Prometheus: {e}"))?
        };
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                if let Err(e) = runtime.block_on(exporter) {
                    log::error!("Prometheus exporter stopped: {e:?}");
                }
            })
            .map_err(|e| format!("could not start the metrics thread: {e}"))?;
        log::info!("Prometheus metrics on http://{addr}/metrics");
        recorder
    };
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("could not install the metrics recorder: {e}"))?;
    let _ = HANDLE.set(handle);
    describe();
    metrics::gauge!("libellule_build_info", "version" => crate::VERSION).set(1.0);
    Ok(())
}

/// Registers the HELP text and units of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        "libellule_uptime_seconds",
        Unit::Seconds,
        "Seconds since the server started."
    );
    describe_gauge!(
        "libellule_build_info",
        "Always 1; the version label is the server version."
    );
    describe_gauge!(
        "libellule_connected_clients",
        Unit::Count,
        "Clients currently connected, per shard."
    );
    describe_gauge!(
        "libellule_blocked_clients",
        Unit::Count,
        "Clients waiting in a blocking command (BLPOP, XREAD BLOCK...), per shard."
    );
    describe_gauge!(
        "libellule_pubsub_channels",
        Unit::Count,
        "Pub/sub channels with subscribers among this shard's clients, per kind (channel, \
         pattern, shard) and shard."
    );
    describe_counter!(
        "libellule_connections_received_total",
        Unit::Count,
        "Connections accepted, per shard."
    );
    describe_counter!(
        "libellule_commands_total",
        Unit::Count,
        "Commands processed, per command and shard."
    );
    describe_counter!(
        "libellule_command_errors_total",
        Unit::Count,
        "Commands rejected (arity, auth...) or answered with an error, per command and shard."
    );
    describe_counter!(
        "libellule_errors_total",
        Unit::Count,
        "Error replies by their first word (ERR, WRONGTYPE...), per shard."
    );
    describe_counter!(
        "libellule_keyspace_hits_total",
        Unit::Count,
        "Successful key lookups by read commands, per shard."
    );
    describe_counter!(
        "libellule_keyspace_misses_total",
        Unit::Count,
        "Failed key lookups by read commands, per shard."
    );
    describe_gauge!(
        "libellule_keys",
        Unit::Count,
        "Keys per database and shard."
    );
    describe_gauge!(
        "libellule_keys_with_expiry",
        Unit::Count,
        "Keys with a time to live, per database and shard."
    );
    describe_counter!(
        "libellule_expired_keys_total",
        Unit::Count,
        "Keys removed because their time to live passed, per shard."
    );
    describe_counter!(
        "libellule_net_input_bytes_total",
        Unit::Bytes,
        "Bytes read from clients, per shard."
    );
    describe_counter!(
        "libellule_net_output_bytes_total",
        Unit::Bytes,
        "Bytes written to clients, per shard."
    );
    describe_counter!(
        "libellule_command_latency_seconds_bucket",
        Unit::Count,
        "Commands that ran in at most `le` seconds, per command and shard (cumulative \
         histogram buckets; timed while latency-tracking is yes)."
    );
    describe_counter!(
        "libellule_command_latency_seconds_count",
        Unit::Count,
        "Commands timed, per command and shard."
    );
    describe_gauge!(
        "libellule_command_latency_seconds_sum",
        Unit::Seconds,
        "Total seconds spent running each command, per shard."
    );
    describe_counter!(
        "libellule_auth_failures_total",
        Unit::Count,
        "Failed AUTH and HELLO AUTH attempts, per shard."
    );
    describe_counter!(
        "libellule_rejected_connections_total",
        Unit::Count,
        "Connections refused (maxclients, protected mode), per shard."
    );
    describe_counter!(
        "libellule_client_output_limit_disconnections_total",
        Unit::Count,
        "Clients closed for passing their client-output-buffer-limit, per shard."
    );
    describe_counter!(
        "libellule_evicted_clients_total",
        Unit::Count,
        "Clients closed by client eviction (maxmemory-clients), per shard."
    );
    describe_counter!(
        "libellule_evicted_keys_total",
        Unit::Count,
        "Keys evicted to stay within maxmemory (cache mode), per shard."
    );
    describe_gauge!(
        "libellule_memory_used_bytes",
        Unit::Bytes,
        "Bytes allocated by the process (jemalloc's count; INFO used_memory)."
    );
    describe_gauge!(
        "libellule_memory_used_peak_bytes",
        Unit::Bytes,
        "The highest used memory seen (INFO used_memory_peak)."
    );
    describe_counter!(
        "libellule_snapshots_total",
        Unit::Count,
        "Snapshots (SAVE, BGSAVE, schedules, shutdown) by outcome (ok, failed)."
    );
    describe_gauge!(
        "libellule_snapshot_in_progress",
        Unit::Count,
        "1 while a snapshot is being written."
    );
    describe_gauge!(
        "libellule_snapshot_last_duration_seconds",
        Unit::Seconds,
        "How long the last snapshot took (-1 before any)."
    );
    describe_gauge!(
        "libellule_snapshot_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last successful snapshot (the start time before any)."
    );
    describe_gauge!(
        "libellule_loading",
        Unit::Count,
        "1 while the snapshot is being loaded at start."
    );
    describe_gauge!(
        "libellule_memory_rss_bytes",
        Unit::Bytes,
        "Resident set size of the process."
    );
    describe_gauge!(
        "libellule_maxmemory_bytes",
        Unit::Bytes,
        "The maxmemory setting (0 = no limit)."
    );
}

/// The metrics in Prometheus's text format (empty before [`init`]).
pub fn render() -> String {
    HANDLE.get().map(|h| h.render()).unwrap_or_default()
}

/// What the first bytes of a connection are, as far as `GET /metrics` goes.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpProbe {
    /// Not an HTTP metrics request: parse it as Redis would.
    NotHttp,
    /// Could still become one: wait for more bytes.
    NeedMore,
    /// A complete `GET /metrics` request head.
    Metrics,
}

/// Most bytes of request head read before answering anyway.
const MAX_HEAD: usize = 8192;

/// Classifies the first bytes `buf` of a connection. `eof` tells that no more bytes will
/// come. A request is answered once its head is complete (blank line), so the client's
/// bytes are all read before the connection closes (closing with unread input would
/// reset it and could lose the reply).
pub fn http_request(buf: &[u8], eof: bool) -> HttpProbe {
    const PREFIX: &[u8] = b"GET /metrics";
    if buf.len() <= PREFIX.len() {
        return if !eof && PREFIX.starts_with(buf) {
            HttpProbe::NeedMore
        } else {
            HttpProbe::NotHttp
        };
    }
    if !buf.starts_with(PREFIX) || !matches!(buf[PREFIX.len()], b' ' | b'?' | b'\r' | b'\n') {
        return HttpProbe::NotHttp;
    }
    let complete = buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n");
    if complete || eof || buf.len() >= MAX_HEAD {
        HttpProbe::Metrics
    } else {
        HttpProbe::NeedMore
    }
}

/// The full HTTP response to `GET /metrics`.
pub fn http_response() -> Vec<u8> {
    let body = render();
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Resident set size in bytes (from /proc/self/statm).
fn rss_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if page > 0 { page as u64 } else { 4096 };
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page)
        .unwrap_or(0)
}

/// Process-wide gauges, published by shard 0.
struct Global {
    uptime: Gauge,
    rss: Gauge,
    maxmemory: Gauge,
    used: Gauge,
    peak: Gauge,
    saves_ok: Counter,
    saves_failed: Counter,
    save_running: Gauge,
    save_duration: Gauge,
    save_last_ok: Gauge,
    loading: Gauge,
}

/// The latency histogram series of one command on one shard.
struct LatencySeries {
    buckets: Vec<Counter>,
    count: Counter,
    sum: Gauge,
}

impl LatencySeries {
    fn new(cmd: &'static str, shard: &str) -> LatencySeries {
        let probe = crate::shard::latency::Histogram::default();
        let buckets = probe
            .prometheus_buckets()
            .map(|(le, _)| le_label_series(cmd, shard, crate::shard::latency::le_label(le)))
            .chain(std::iter::once(le_label_series(cmd, shard, "+Inf".into())))
            .collect();
        LatencySeries {
            buckets,
            count: metrics::counter!("libellule_command_latency_seconds_count", "cmd" => cmd, "shard" => shard.to_string()),
            sum: metrics::gauge!("libellule_command_latency_seconds_sum", "cmd" => cmd, "shard" => shard.to_string()),
        }
    }

    fn publish(&self, h: &crate::shard::latency::Histogram) {
        for (counter, (_, n)) in self.buckets.iter().zip(h.prometheus_buckets()) {
            counter.absolute(n);
        }
        if let Some(inf) = self.buckets.last() {
            inf.absolute(h.count);
        }
        self.count.absolute(h.count);
        self.sum.set(h.total_ns as f64 / 1e9);
    }
}

fn le_label_series(cmd: &'static str, shard: &str, le: String) -> Counter {
    metrics::counter!("libellule_command_latency_seconds_bucket", "cmd" => cmd, "le" => le, "shard" => shard.to_string())
}

/// Per-database gauges of one shard.
struct DbGauges {
    keys: Gauge,
    expires: Gauge,
}

/// One shard's metric handles; lives in the shard's timer task.
pub struct ShardMetrics {
    shard: String,
    last: Option<Instant>,
    connected: Gauge,
    blocked: Gauge,
    /// Channels, patterns, shard channels.
    pubsub: [Gauge; 3],
    connections: Counter,
    hits: Counter,
    misses: Counter,
    expired: Counter,
    evicted: Counter,
    net_in: Counter,
    net_out: Counter,
    auth_failures: Counter,
    rejected: Counter,
    obuf_kills: Counter,
    evicted_clients: Counter,
    /// Per registry index: (calls, errors), created when the command is first used.
    cmds: Vec<Option<(Counter, Counter)>>,
    /// Per registry index: latency series, created when the command is first timed.
    latency: Vec<Option<LatencySeries>>,
    errors: HashMap<String, Counter>,
    /// Per database, created once it has held a key.
    dbs: Vec<Option<DbGauges>>,
    global: Option<Global>,
}

impl ShardMetrics {
    /// Handles for shard `id`.
    pub fn new(id: usize) -> ShardMetrics {
        let shard = id.to_string();
        let s = || shard.clone();
        let global = (id == 0).then(|| Global {
            uptime: metrics::gauge!("libellule_uptime_seconds"),
            rss: metrics::gauge!("libellule_memory_rss_bytes"),
            maxmemory: metrics::gauge!("libellule_maxmemory_bytes"),
            used: metrics::gauge!("libellule_memory_used_bytes"),
            peak: metrics::gauge!("libellule_memory_used_peak_bytes"),
            saves_ok: metrics::counter!("libellule_snapshots_total", "outcome" => "ok"),
            saves_failed: metrics::counter!("libellule_snapshots_total", "outcome" => "failed"),
            save_running: metrics::gauge!("libellule_snapshot_in_progress"),
            save_duration: metrics::gauge!("libellule_snapshot_last_duration_seconds"),
            save_last_ok: metrics::gauge!("libellule_snapshot_last_success_timestamp_seconds"),
            loading: metrics::gauge!("libellule_loading"),
        });
        ShardMetrics {
            connected: metrics::gauge!("libellule_connected_clients", "shard" => s()),
            blocked: metrics::gauge!("libellule_blocked_clients", "shard" => s()),
            pubsub: ["channel", "pattern", "shard"].map(
                |kind| metrics::gauge!("libellule_pubsub_channels", "kind" => kind, "shard" => s()),
            ),
            connections: metrics::counter!("libellule_connections_received_total", "shard" => s()),
            hits: metrics::counter!("libellule_keyspace_hits_total", "shard" => s()),
            misses: metrics::counter!("libellule_keyspace_misses_total", "shard" => s()),
            expired: metrics::counter!("libellule_expired_keys_total", "shard" => s()),
            evicted: metrics::counter!("libellule_evicted_keys_total", "shard" => s()),
            net_in: metrics::counter!("libellule_net_input_bytes_total", "shard" => s()),
            net_out: metrics::counter!("libellule_net_output_bytes_total", "shard" => s()),
            auth_failures: metrics::counter!("libellule_auth_failures_total", "shard" => s()),
            rejected: metrics::counter!("libellule_rejected_connections_total", "shard" => s()),
            obuf_kills: metrics::counter!("libellule_client_output_limit_disconnections_total", "shard" => s()),
            evicted_clients: metrics::counter!("libellule_evicted_clients_total", "shard" => s()),
            cmds: Vec::new(),
            latency: Vec::new(),
            errors: HashMap::new(),
            dbs: Vec::new(),
            global,
            last: None,
            shard,
        }
    }

    /// Publishes `d`'s current totals, unless it did so less than 100 ms ago.
    pub fn publish(&mut self, d: &ShardData) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < PUBLISH_EVERY)
        {
            return;
        }
        self.last = Some(now);
        let st = &d.stats;
        self.connected.set(st.connected_clients as f64);
        self.blocked.set(st.blocked_clients as f64);
        let (channels, patterns, shard_channels) = d.pubsub.counts();
        self.pubsub[0].set(channels as f64);
        self.pubsub[1].set(patterns as f64);
        self.pubsub[2].set(shard_channels as f64);
        self.connections.absolute(st.total_connections);
        self.hits.absolute(st.keyspace_hits);
        self.misses.absolute(st.keyspace_misses);
        self.evicted.absolute(st.evicted_keys);
        self.net_in.absolute(st.net_input_bytes);
        self.net_out.absolute(st.net_output_bytes);
        self.auth_failures.absolute(st.auth_failures);
        self.rejected.absolute(st.rejected_connections);
        self.obuf_kills.absolute(st.output_limit_disconnections);
        self.evicted_clients.absolute(st.evicted_clients);
        self.expired
            .absolute(d.dbs.iter().map(|db| db.expired_keys).sum());
        if self.cmds.len() < st.cmds.len() {
            self.cmds.resize_with(st.cmds.len(), || None);
        }
        let names = &registry().stat_names;
        for (i, c) in st.cmds.iter().enumerate().take(names.len()) {
            let errors = c.failed + c.rejected;
            if c.calls == 0 && errors == 0 && self.cmds[i].is_none() {
                continue;
            }
            let shard = &self.shard;
            let (calls_m, errors_m) = self.cmds[i].get_or_insert_with(|| {
                let name = names[i].as_str();
                (
                    metrics::counter!("libellule_commands_total", "cmd" => name, "shard" => shard.clone()),
                    metrics::counter!("libellule_command_errors_total", "cmd" => name, "shard" => shard.clone()),
                )
            });
            calls_m.absolute(c.calls);
            errors_m.absolute(errors);
        }
        if self.latency.len() < st.latency.len() {
            self.latency.resize_with(st.latency.len(), || None);
        }
        for (i, h) in st.latency.iter().enumerate().take(names.len()) {
            let Some(h) = h else { continue };
            let shard = &self.shard;
            let series =
                self.latency[i].get_or_insert_with(|| LatencySeries::new(names[i].as_str(), shard));
            series.publish(h);
        }
        for (kind, &n) in &st.errors {
            if !self.errors.contains_key(kind) {
                let c = metrics::counter!("libellule_errors_total", "type" => kind.clone(), "shard" => self.shard.clone());
                self.errors.insert(kind.clone(), c);
            }
            self.errors[kind].absolute(n);
        }
        if self.dbs.len() < d.dbs.len() {
            self.dbs.resize_with(d.dbs.len(), || None);
        }
        for (i, db) in d.dbs.iter().enumerate() {
            let keys = db.len();
            if keys == 0 && self.dbs[i].is_none() {
                continue;
            }
            let shard = &self.shard;
            let g = self.dbs[i].get_or_insert_with(|| DbGauges {
                keys: metrics::gauge!("libellule_keys", "db" => i.to_string(), "shard" => shard.clone()),
                expires: metrics::gauge!("libellule_keys_with_expiry", "db" => i.to_string(), "shard" => shard.clone()),
            });
            g.keys.set(keys as f64);
            g.expires.set(db.expires_len() as f64);
        }
        if let Some(g) = &self.global {
            g.uptime.set(d.started.elapsed().as_secs_f64().floor());
            g.rss.set(rss_bytes() as f64);
            g.maxmemory.set(d.config.maxmemory as f64);
            g.used.set(crate::shard::memory::last().allocated as f64);
            g.peak.set(crate::shard::memory::peak() as f64);
            let (ok, failed) = crate::persistence::counts();
            g.saves_ok.absolute(ok);
            g.saves_failed.absolute(failed);
            g.save_running
                .set(f64::from(u8::from(crate::persistence::in_progress())));
            g.save_duration
                .set(crate::persistence::last_duration() as f64);
            g.save_last_ok.set(crate::persistence::last_save() as f64);
            g.loading
                .set(f64::from(u8::from(crate::persistence::loading())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe() {
        use HttpProbe::*;
        assert_eq!(http_request(b"G", false), NeedMore);
        assert_eq!(http_request(b"GET /met", false), NeedMore);
        assert_eq!(http_request(b"GET /metrics", false), NeedMore);
        assert_eq!(http_request(b"GET /metrics", true), NotHttp);
        assert_eq!(http_request(b"GET /met", true), NotHttp);
        assert_eq!(
            http_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", false),
            NeedMore
        );
        assert_eq!(
            http_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false),
            Metrics
        );
        assert_eq!(
            http_request(b"GET /metrics?x=1 HTTP/1.0\n\n", false),
            Metrics
        );
        assert_eq!(http_request(b"GET /metrics HTTP/1.1\r\n", true), Metrics);
        assert_eq!(http_request(b"GET /metricsx\r\n", false), NotHttp);
        assert_eq!(http_request(b"GET key\r\n", false), NotHttp);
        assert_eq!(http_request(b"*1\r\n$4\r\nPING\r\n", false), NotHttp);
        assert_eq!(http_request(b"PING\r\n", false), NotHttp);
    }
}
