//! Living under a service manager: systemd notifications and signals.
//!
//! - [`notify`] sends an `sd_notify` message to `$NOTIFY_SOCKET` (a path, or an abstract
//!   socket name when it starts with '@'), over a Unix datagram socket.
//! - [`shard_ready`] is called by each shard once its listeners are armed; the last one
//!   logs "Ready to accept connections" and sends `READY=1`.
//! - [`Watchdog`] sends `WATCHDOG=1` at half of `$WATCHDOG_USEC` (from shard 0's timer,
//!   so a stuck shard 0 stops the pings).
//! - [`install_signal_handling`] blocks SIGTERM and SIGINT in every thread and waits for
//!   them on a thread of its own: the first one saves a snapshot when save points are
//!   configured (and keeps the server running if that fails, as Redis), sends `STOPPING=1`, stops the listeners
//!   accepting, gives replies in flight a moment, and exits with status 0; a second one
//!   exits at once.

use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set once a shutdown signal arrived.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Shards whose listeners are armed.
static READY_SHARDS: AtomicUsize = AtomicUsize::new(0);
/// Every shard's listening sockets (shut when stopping).
static LISTENERS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// How long replies in flight get after a shutdown signal.
const GRACE: Duration = Duration::from_millis(250);

/// True once a shutdown signal arrived: the shards stop accepting.
#[inline]
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Relaxed)
}

/// Sends `state` to the service manager if `$NOTIFY_SOCKET` is set. Returns whether a
/// message was sent.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    match send_notify(&path, state) {
        Ok(()) => true,
        Err(e) => {
            log::warn!(
                "could not notify the service manager at {}: {e}",
                path.to_string_lossy()
            );
            false
        }
    }
}

fn send_notify(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let bytes = path.as_bytes();
    let sock = UnixDatagram::unbound()?;
    match bytes.split_first() {
        Some((&b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        Some((&b'/', _)) => {
            sock.send_to(state.as_bytes(), path)?;
        }
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "unsupported NOTIFY_SOCKET address",
            ))
        }
    }
    Ok(())
}

/// Called by each of the `n` shards once its listeners are armed; the last one announces
/// readiness (log line and `READY=1`).
pub fn shard_ready(n: usize) {
    if READY_SHARDS.fetch_add(1, Ordering::AcqRel) + 1 == n {
        log::info!("Ready to accept connections");
        notify("READY=1\nSTATUS=Ready to accept connections");
    }
}

/// Records the listening sockets so a shutdown signal can stop them accepting.
pub fn register_listeners(fds: &[RawFd]) {
    LISTENERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend_from_slice(fds);
}

/// Keep-alive pings for systemd's `WatchdogSec=`.
pub struct Watchdog {
    every: Duration,
    last: Option<Instant>,
}

impl Watchdog {
    /// A watchdog if `$WATCHDOG_USEC` is set (and `$WATCHDOG_PID`, if set, is this process).
    pub fn from_env() -> Option<Watchdog> {
        std::env::var_os("NOTIFY_SOCKET")?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
                return None;
            }
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
        if usec == 0 {
            return None;
        }
        log::info!("systemd watchdog: pinging every {} ms", usec / 2000);
        Some(Watchdog {
            every: Duration::from_micros(usec / 2),
            last: None,
        })
    }

    /// Sends `WATCHDOG=1` if half the watchdog period passed since the last one.
    pub fn tick(&mut self) {
        if self.last.is_none_or(|t| t.elapsed() >= self.every) {
            self.last = Some(Instant::now());
            notify("WATCHDOG=1");
        }
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts
/// afterwards) and starts the thread that waits for them. Call before starting any
/// other thread.
pub fn install_signal_handling() -> Result<(), String> {
    let set = signal_set();
    // SAFETY: set is initialised; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(format!(
            "could not block signals: {}",
            std::io::Error::from_raw_os_error(rc)
        ));
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(signal_loop)
        .map_err(|e| format!("could not start the signal thread: {e}"))?;
    Ok(())
}

/// When save points are configured, saves before exiting (as Redis does on SIGTERM and
/// SIGINT). Returns false when the save failed: the server keeps running, as Redis's
/// "Error trying to save the DB, can't exit". A second signal during the save exits at
/// once.
fn save_before_exit() -> bool {
    if !crate::persistence::save_configured() || crate::persistence::loading() {
        return true;
    }
    log::info!("Saving the final RDB snapshot before exiting.");
    let outcome = crate::persistence::schedule::save_for_signal(|| {
        if let Some(sig) = wait_signal(Some(Duration::from_millis(20))) {
            log::warn!(
                "Received {} during shutdown: you insist... exiting now.",
                signal_name(sig)
            );
            std::process::exit(1);
        }
        true
    });
    if outcome == Some(true) {
        return true;
    }
    log::warn!("Error trying to save the DB, can't exit.");
    false
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// Waits up to `timeout` (forever if None) for a signal of the set; None on timeout or
/// interruption.
fn wait_signal(timeout: Option<Duration>) -> Option<i32> {
    let set = signal_set();
    // SAFETY: set, info and ts are valid for the calls; the signals are blocked here.
    let sig = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        match timeout {
            None => libc::sigwaitinfo(&set, &mut info),
            Some(t) => {
                let mut ts: libc::timespec = std::mem::zeroed();
                ts.tv_sec = t.as_secs() as libc::time_t;
                ts.tv_nsec = t.subsec_nanos() as libc::c_long;
                libc::sigtimedwait(&set, &mut info, &ts)
            }
        }
    };
    (sig > 0).then_some(sig)
}

fn signal_loop() {
    loop {
        let sig = loop {
            if let Some(sig) = wait_signal(None) {
                break sig;
            }
        };
        log::warn!("Received {} scheduling shutdown...", signal_name(sig));
        if save_before_exit() {
            break;
        }
    }
    STOPPING.store(true, Ordering::SeqCst);
    notify("STOPPING=1\nSTATUS=Shutting down");
    // Stop accepting: new connections are refused, connected clients keep being served
    // for the grace period.
    for &fd in LISTENERS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        // SAFETY: shutting down a listening socket we own; the fd stays open.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
    let deadline = Instant::now() + GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some(sig) = wait_signal(Some(left)) {
            log::warn!(
                "Received {} during shutdown: you insist... exiting now.",
                signal_name(sig)
            );
            std::process::exit(1);
        }
    }
    log::warn!("Libellule is now ready to exit, bye bye...");
    std::process::exit(0);
}
