//! Starting the shards: one glommio executor per shard, pinned to the CPUs this process
//! may run on, joined by a channel mesh, each running its network loop, its mesh
//! receivers and its active-expiry timer.

use super::{Job, ShardData, Shards, MAX_SHARDS};
use crate::config::Config;
use crate::server::net::NetLoop;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::io::{IntoRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

/// glommio's registered I/O memory per shard. Sockets do not use it (they go through the
/// shard's own ring); it serves DMA file I/O. Kept small because it is locked memory.
const IO_MEMORY: usize = 256 * 1024;

/// CPUs this process may run on (`sched_getaffinity`), so `taskset -c 1 libellule`
/// places every shard on CPU 1.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if cpus.is_empty() {
            vec![0]
        } else {
            cpus
        }
    }
}

/// The number of shards the configuration asks for (0 = one per allowed CPU).
pub fn shard_count(config: &Config) -> usize {
    let cpus = allowed_cpus().len();
    let n = if config.io_threads == 0 {
        cpus
    } else {
        config.io_threads
    };
    n.clamp(1, MAX_SHARDS)
}

/// Checks that no other process listens on `ip:port`. The shards' listeners share the
/// port through SO_REUSEPORT, which would also let them join the listeners of another
/// Libellule started by the same user: a second server must fail like Redis does
/// ("Address already in use"), not silently split the connections with the first.
/// A socket without SO_REUSEPORT cannot bind a port anyone else listens on.
fn probe_port_free(ip: IpAddr, port: u16) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if ip.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if ip.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&SocketAddr::new(ip, port).into())?;
    Ok(())
}

fn bind_listener(ip: IpAddr, port: u16, backlog: u32) -> std::io::Result<RawFd> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(ip, port);
    let domain = if ip.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    if ip.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(sock.into_raw_fd())
}

/// The address a `--bind` entry names (`*` is every IPv4 address; a leading `-` marks an
/// optional address).
pub fn parse_bind(addr: &str) -> Result<IpAddr, String> {
    let a = addr.trim_start_matches('-');
    match a {
        "*" => Ok(IpAddr::from([0, 0, 0, 0])),
        "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
        _ => a
            .parse::<IpAddr>()
            .map_err(|_| format!("invalid --bind address '{addr}'")),
    }
}

/// Binds one listening socket per bind address for one shard (all shards bind the same
/// addresses with SO_REUSEPORT).
fn bind_all(config: &Config) -> Result<Vec<RawFd>, String> {
    let mut fds = Vec::new();
    for b in &config.bind {
        let ip = parse_bind(b)?;
        let fd = bind_listener(ip, config.port, config.tcp_backlog)
            .map_err(|e| format!("could not listen on {b}:{}: {e}", config.port))?;
        fds.push(fd);
    }
    Ok(fds)
}

/// Starts every shard and blocks until they stop. Errors if any shard fails to start.
pub fn run(config: Config) -> Result<(), String> {
    let cpus = allowed_cpus();
    let n = shard_count(&config);
    if n > cpus.len() {
        log::warn!(
            "{} shards requested but only {} CPU(s) available: shards will share CPUs",
            n,
            cpus.len()
        );
    }
    // A port another process listens on fails the start with a clear message.
    for b in &config.bind {
        let ip = parse_bind(b)?;
        probe_port_free(ip, config.port)
            .map_err(|e| format!("could not listen on {b}:{}: {e}", config.port))?;
    }
    // Bind shard 0's listeners up front so a busy port fails the start with a clear message.
    let mut first_listeners = Some(bind_all(&config)?);
    let mut per_shard: Vec<Vec<RawFd>> = Vec::with_capacity(n);
    for i in 0..n {
        if i == 0 {
            per_shard.push(first_listeners.take().expect("bound"));
        } else {
            per_shard.push(bind_all(&config)?);
        }
    }
    for fds in &per_shard {
        crate::ops::register_listeners(fds);
    }
    let online = CpuSet::online().map_err(|e| format!("cannot read CPU topology: {e}"))?;
    let placement: Vec<CpuSet> = (0..n)
        .map(|i| {
            let cpu = cpus[i % cpus.len()];
            online.clone().filter(|l| l.cpu == cpu)
        })
        .collect();
    let placement = if placement.iter().any(|s| s.is_empty()) {
        log::warn!("CPU topology unavailable for pinning; shards are not pinned");
        PoolPlacement::Unbound(n)
    } else {
        PoolPlacement::Custom(placement)
    };
    let mesh: MeshBuilder<Job, _> = MeshBuilder::full(n, 1024);
    let listeners = std::sync::Arc::new(std::sync::Mutex::new(per_shard));
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name("shard")
        .io_memory(IO_MEMORY)
        .preempt_timer(Duration::from_micros(250))
        .on_all_shards(move || {
            let mesh = mesh.clone();
            let config = config.clone();
            let listeners = listeners.clone();
            async move { shard_main(n, config, mesh, listeners).await }
        })
        .map_err(|e| format!("could not start shard executors: {e}"))?;
    let results = handles.join_all();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("shard {i} failed: {e}")),
            Err(e) => return Err(format!("shard {i} executor failed: {e}")),
        }
    }
    Ok(())
}

type SharedListeners = std::sync::Arc<std::sync::Mutex<Vec<Vec<RawFd>>>>;

async fn shard_main(
    n: usize,
    config: Config,
    mesh: MeshBuilder<Job, glommio::channels::channel_mesh::Full>,
    listeners: SharedListeners,
) -> Result<(), String> {
    let hz = config.hz.max(1);
    let (senders, receivers) = mesh
        .join()
        .await
        .map_err(|_| "could not join the shard mesh".to_string())?;
    // The mesh numbers its peers 0..n: that is the shard id.
    let id = senders.peer_id();
    let listeners = std::mem::take(&mut listeners.lock().expect("listeners")[id]);
    let data = Rc::new(RefCell::new(ShardData::new(id, n, config)));
    let shards = Rc::new(Shards::new(id, n, data.clone(), Some(senders)));
    super::set_local_shards(shards.clone());
    let receivers = Rc::new(receivers);
    for peer in 0..n {
        if peer == id {
            continue;
        }
        let receivers = receivers.clone();
        let data = data.clone();
        let shards = shards.clone();
        glommio::spawn_local(async move {
            while let Ok(Some(job)) = receivers.recv_from(peer).await {
                let mut d = data.borrow_mut();
                job(&mut d);
                super::blocking::serve_if_ready(&mut d);
                let notify = d.notify_mask != 0;
                drop(d);
                if notify {
                    crate::server::pubsub::flush_key_events(&shards);
                }
            }
        })
        .detach();
    }
    // Active expiry, the LRU clock, metrics and the systemd watchdog, `hz` times a second.
    {
        let data = data.clone();
        let shards = shards.clone();
        glommio::spawn_local(async move {
            let period = Duration::from_micros(1_000_000 / hz as u64);
            // Redis's slow cycle may use 25% of each period.
            let budget = period / 4;
            let mut metrics = crate::metrics::ShardMetrics::new(id);
            let mut watchdog = if id == 0 {
                crate::ops::Watchdog::from_env()
            } else {
                None
            };
            // Expiry: each tick runs a cycle of at most EXPIRY_SLICE; when a cycle stops on
            // its budget with expired keys left (a backlog), more slices follow, each
            // after yielding to the other tasks (the connection loop serves what came in
            // meanwhile, timers and cross-shard messages run), until the backlog is gone.
            // A mass expiry then uses the CPU the requests leave, while no request waits
            // behind more than one slice. (Redis's fast cycle instead runs 1 ms every
            // 2 ms at most, a third of the CPU: 1M keys take it about 30 periods at
            // hz 10; see docs/memory.md.)
            const EXPIRY_SLICE: Duration = Duration::from_millis(1);
            let mut last_tick = std::time::Instant::now();
            let mut backlog = false;
            loop {
                if backlog {
                    glommio::executor().yield_task_queue_now().await;
                } else {
                    glommio::timer::sleep(period.saturating_sub(last_tick.elapsed())).await;
                }
                let mut d = data.borrow_mut();
                if last_tick.elapsed() < period {
                    backlog = d.active_expire_cycle_timed(EXPIRY_SLICE).1;
                    let notify = d.notify_mask != 0;
                    drop(d);
                    if notify {
                        crate::server::pubsub::flush_key_events(&shards);
                    }
                    continue;
                }
                last_tick = std::time::Instant::now();
                d.tick_clock();
                backlog = d.active_expire_cycle_timed(EXPIRY_SLICE).1;
                d.memory_cron(budget);
                d.close_idle_clients();
                metrics.publish(&d);
                crate::persistence::publish_dirty(id, d.dirty);
                let notify = d.notify_mask != 0;
                drop(d);
                if id == 0 {
                    crate::persistence::schedule::tick(&shards);
                }
                if notify {
                    crate::server::pubsub::flush_key_events(&shards);
                }
                if let Some(w) = watchdog.as_mut() {
                    w.tick();
                }
            }
        })
        .detach();
    }
    if id == 0 {
        if let Some(path) = crate::persistence::startup_file() {
            glommio::spawn_local(crate::persistence::loader::run(shards.clone(), path)).detach();
        }
    }
    let netloop = NetLoop::new(shards, listeners).map_err(|e| e.to_string())?;
    // The listeners are armed (their accepts are submitted on the loop's first turn;
    // connections queue in the backlog meanwhile).
    crate::ops::shard_ready(n);
    netloop
        .run()
        .await
        .map_err(|e| format!("network loop: {e}"))
}
