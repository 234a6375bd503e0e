//! The per-shard io_uring event loop.
//!
//! Each shard owns one io_uring instance (the `io-uring` crate) for its sockets:
//! - a multishot ACCEPT per listening socket (every shard listens on the same port with
//!   `SO_REUSEPORT`, so the kernel spreads connections over shards);
//! - a multishot RECV per connection, drawing from a provided-buffer ring: received bytes
//!   are appended to the connection's read buffer and the kernel buffer goes straight back;
//! - at most one SEND per connection in flight, carrying every reply produced since the
//!   previous one (a pipelined batch is read, run and answered as one batch).
//!
//! The loop is a glommio task. While there is work it reaps completions, runs commands and
//! submits, giving glommio a turn when its preemption timer says so (so timers, channel
//! messages from other shards and file I/O keep flowing). When idle it never blocks in its
//! own ring: it awaits, through glommio's reactor, the ring's fd becoming readable (the
//! kernel makes it readable when a completion is posted) or a local notification (an async
//! command finished). glommio then parks the thread and wakes it for either event, for a
//! timer, or for a message from another shard. See docs/decisions.md.

use super::client::{ClientRef, ClientState};
use super::conn::{process_input, Completions, Conn, LoopCtx, OUTPUT_PAUSE};
use crate::protocol::parse::{Limits, Parser};
use crate::shard::Shards;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::unix::io::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// `IORING_ENTER_GETEVENTS` from the kernel ABI.
const IORING_ENTER_GETEVENTS: u32 = 1;

const OP_ACCEPT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;

/// How long an idle loop waits in its own ring before parking through glommio. Bounds
/// the extra delay a timer or cross-shard message can see while the shard is busy-idle.
const SPIN_WAIT: Duration = Duration::from_micros(50);

/// How long an idle loop polls its ring (without sleeping) before waiting in it.
const SPIN_POLL: Duration = Duration::from_micros(20);

const BUF_GROUP: u16 = 0;
/// Buffers in the ring. The kernel takes them in ring order, so every buffer is touched
/// under load and the ring's resident size is `BUF_COUNT * BUF_SIZE` per shard (1 MiB):
/// 256 cost 4 MiB per shard for no measurable gain. When a burst of receives finds the
/// ring empty, the receive ends with ENOBUFS and is re-armed once buffers are back.
const BUF_COUNT: u16 = 64;
const BUF_SIZE: usize = 16 * 1024;

/// After `accept` fails (out of file descriptors...), accepting resumes this much later.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Redis's reply to a non-loopback client in protected mode.
pub(crate) const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Next client id, unique over all shards.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);
/// Connected clients over all shards (checked against `maxclients` on accept only).
pub static CONNECTED_CLIENTS: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn user_data(op: u64, slot: u32, gen: u32) -> u64 {
    ((gen as u64) << 32) | ((slot as u64) << 8) | op
}

#[inline]
fn split_user_data(ud: u64) -> (u64, u32, u32) {
    (ud & 0xff, ((ud >> 8) & 0xff_ffff) as u32, (ud >> 32) as u32)
}

/// The provided-buffer ring: `BUF_COUNT` buffers of `BUF_SIZE` bytes the kernel fills.
struct BufRing {
    ring: *mut types::BufRingEntry,
    ring_layout: std::alloc::Layout,
    bufs: Vec<u8>,
    tail: u16,
    mask: u16,
}

impl BufRing {
    fn new(uring: &IoUring) -> io::Result<BufRing> {
        let ring_layout = std::alloc::Layout::from_size_align(
            BUF_COUNT as usize * std::mem::size_of::<types::BufRingEntry>(),
            4096,
        )
        .expect("layout");
        // SAFETY: non-zero size layout.
        let ring = unsafe { std::alloc::alloc_zeroed(ring_layout) } as *mut types::BufRingEntry;
        if ring.is_null() {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer ring"));
        }
        let mut br = BufRing {
            ring,
            ring_layout,
            bufs: vec![0u8; BUF_COUNT as usize * BUF_SIZE],
            tail: 0,
            mask: BUF_COUNT - 1,
        };
        // SAFETY: the ring memory stays allocated until Drop, after unregistering.
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ring as u64, BUF_COUNT, BUF_GROUP, 0)?;
        }
        for bid in 0..BUF_COUNT {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: idx < BUF_COUNT, within the allocation.
        let entry = unsafe { &mut *self.ring.add(idx) };
        entry.set_addr(self.bufs.as_ptr() as u64 + bid as u64 * BUF_SIZE as u64);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives inside the first entry; the kernel reads it.
        unsafe {
            let tail = types::BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn buf(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * BUF_SIZE;
        &self.bufs[start..start + len]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with this layout.
        unsafe { std::alloc::dealloc(self.ring as *mut u8, self.ring_layout) }
    }
}

/// A slab of connections indexed by slot.
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Conn>>,
    gens: Vec<u32>,
    free: Vec<u32>,
}

impl Slab {
    fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let gen = self.gens[slot as usize].wrapping_add(1);
        self.gens[slot as usize] = gen;
        self.slots[slot as usize] = Some(make(gen));
        slot
    }

    fn get(&mut self, slot: u32, gen: u32) -> Option<&mut Conn> {
        match self.slots.get_mut(slot as usize) {
            Some(Some(c)) if c.gen == gen => Some(c),
            _ => None,
        }
    }

    fn remove(&mut self, slot: u32) -> Option<Conn> {
        let c = self.slots.get_mut(slot as usize)?.take();
        if c.is_some() {
            self.free.push(slot);
        }
        c
    }
}

/// Everything the loop of one shard owns.
pub struct NetLoop {
    ring: IoUring,
    eventfd: RawFd,
    bufring: BufRing,
    listeners: Vec<RawFd>,
    conns: Slab,
    shards: Rc<Shards>,
    completions: Rc<Completions>,
    dirty: Vec<(u32, u32)>,
    limits: Limits,
    by_client: hashbrown::HashMap<u64, (u32, u32)>,
    query_buffer_limit: u64,
    desk: Rc<super::busy::BusyDesk>,
    /// The shard's `config_gen` the cached limits were read at.
    config_gen: u64,
    /// `client-output-buffer-limit` per class (normal, replica, pubsub).
    output_limits: [[u64; 3]; 3],
    /// The smallest non-zero output limit: below it no connection is checked.
    output_check_min: usize,
    /// Listeners whose accept failed and waits for a retry.
    accept_paused: Vec<bool>,
    /// Set by the retry timer: re-arm the paused accepts.
    accept_retry_due: Rc<std::cell::Cell<bool>>,
    /// Accept failures: when one was last logged, and how many since.
    accept_log: (Option<std::time::Instant>, u64),
    /// This shard's share of `maxmemory-clients` in bytes (0 = no client eviction),
    /// shared with the timer task that asks for a check ten times a second.
    client_mem_limit: Rc<std::cell::Cell<u64>>,
    /// Set by that timer: compare the clients' buffers with the limit.
    client_mem_due: Rc<std::cell::Cell<bool>>,
}

impl NetLoop {
    /// Creates the ring, registers the buffer ring and arms accepts on `listeners`.
    pub fn new(shards: Rc<Shards>, listeners: Vec<RawFd>) -> io::Result<NetLoop> {
        // DEFER_TASKRUN: completions are posted only when this thread enters the ring
        // with GETEVENTS, so network events never interrupt the shard with IPIs and are
        // reaped in batches. It needs SINGLE_ISSUER (only this thread submits).
        let ring = IoUring::builder()
            .setup_cqsize(16384)
            .setup_submit_all()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .build(4096)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("io_uring setup failed (kernel 6.1+ with DEFER_TASKRUN needed): {e}"),
                )
            })?;
        // The kernel signals this eventfd when work for the ring arrives; an idle loop
        // waits for it through glommio.
        // SAFETY: plain syscall.
        let eventfd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if eventfd < 0 {
            return Err(io::Error::last_os_error());
        }
        ring.submitter().register_eventfd(eventfd)?;
        let bufring = BufRing::new(&ring).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "io_uring provided-buffer ring registration failed (kernel 5.19+ needed): {e}"
                ),
            )
        })?;
        let limits = {
            let d = shards.data.borrow();
            Limits {
                proto_max_bulk_len: d.config.proto_max_bulk_len as usize,
                ..Limits::default()
            }
        };
        let query_buffer_limit = shards.data.borrow().config.client_query_buffer_limit;
        let completions = Rc::new(Completions::default());
        shards.data.borrow_mut().loop_waker = Some(completions.clone());
        let desk = super::busy::BusyDesk::install(listeners.clone(), limits.clone(), shards.n);
        let mut nl = NetLoop {
            ring,
            eventfd,
            bufring,
            listeners,
            conns: Slab::default(),
            shards,
            completions,
            dirty: Vec::new(),
            limits,
            by_client: hashbrown::HashMap::new(),
            query_buffer_limit,
            desk,
            config_gen: 0,
            output_limits: [[0; 3]; 3],
            output_check_min: usize::MAX,
            accept_paused: Vec::new(),
            accept_retry_due: Rc::new(std::cell::Cell::new(false)),
            accept_log: (None, 0),
            client_mem_limit: Rc::new(std::cell::Cell::new(0)),
            client_mem_due: Rc::new(std::cell::Cell::new(false)),
        };
        nl.accept_paused = vec![false; nl.listeners.len()];
        nl.refresh_limits();
        for i in 0..nl.listeners.len() {
            nl.arm_accept(i);
        }
        Ok(nl)
    }

    fn push_sqe(&mut self, sqe: squeue::Entry) {
        loop {
            // SAFETY: every buffer referenced by our SQEs outlives the operation (the
            // connection keeps it until the completion arrives).
            let pushed = unsafe { self.ring.submission().push(&sqe).is_ok() };
            if pushed {
                return;
            }
            if let Err(e) = self.enter() {
                log::error!("io_uring submit failed: {e}");
            }
        }
    }

    fn arm_accept(&mut self, idx: usize) {
        let fd = self.listeners[idx];
        let sqe = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(OP_ACCEPT, idx as u32, 0));
        self.push_sqe(sqe);
    }

    fn arm_recv(&mut self, slot: u32, gen: u32, fd: RawFd) {
        let sqe = opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP)
            .build()
            .user_data(user_data(OP_RECV, slot, gen));
        self.push_sqe(sqe);
    }

    /// The loop. Returns only on a fatal ring error.
    pub async fn run(mut self) -> io::Result<()> {
        let eventfd = self.eventfd;
        let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        loop {
            if self.desk.has_work() {
                self.adopt_from_desk();
            }
            if self.shards.data.borrow().config_gen != self.config_gen {
                self.refresh_limits();
            }
            if self.client_mem_due.replace(false) {
                self.evict_clients();
            }
            if self.accept_retry_due.replace(false) {
                for i in 0..self.listeners.len() {
                    if std::mem::replace(&mut self.accept_paused[i], false) {
                        self.arm_accept(i);
                    }
                }
            }
            // Submit what is queued and run the ring's deferred work (posting completions).
            self.enter()?;
            cqes.clear();
            for cqe in self.ring.completion() {
                cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            let had_cqes = !cqes.is_empty();
            for &(ud, res, flags) in cqes.iter() {
                self.handle_cqe(ud, res, flags);
            }
            if had_cqes {
                self.bufring.publish();
            }
            let ready = std::mem::take(&mut *self.completions.ready.borrow_mut());
            let had_ready = !ready.is_empty();
            self.completions.clear();
            for (slot, gen, reply) in ready {
                if let Some(conn) = self.conns.get(slot, gen) {
                    // CLIENT REPLY applies as the command finishes (the command may be
                    // CLIENT REPLY itself).
                    let start = conn.wbuf.len();
                    conn.wbuf.extend_from_slice(&reply);
                    conn.quiet.set(false);
                    let mut client = conn.client.borrow_mut();
                    crate::server::conn::apply_reply_mode(&mut client, &mut conn.wbuf, start);
                    drop(client);
                    conn.waiting = false;
                    self.dirty.push((slot, gen));
                }
            }
            self.check_killed();
            self.deliver_pushes();
            self.process_dirty();
            if self.shards.data.borrow().notify_mask != 0 {
                crate::server::pubsub::flush_key_events(&self.shards);
            }
            let spawned = self.completions.spawned.replace(false);

            if !had_cqes && !had_ready && self.dirty.is_empty() {
                // Nothing happened this turn. Under load the next request is usually
                // microseconds away: wait for it in our own ring first, briefly, unless
                // tasks were just spawned (glommio must run them) — a park through
                // glommio costs several system calls and a memory barrier.
                if !spawned && (self.spin_own_ring(SPIN_POLL)? || self.wait_own_ring(SPIN_WAIT)) {
                    continue;
                }
                // Idle: let glommio park until the kernel signals work for our ring, a
                // local task finished, or glommio has its own work (timers, messages).
                drain_eventfd(eventfd);
                self.enter()?;
                if self.ring.completion().is_empty() && self.completions.ready.borrow().is_empty() {
                    WaitIdle {
                        readable: Box::pin(glommio::wait_fd_readable(eventfd)),
                        completions: &self.completions,
                    }
                    .await;
                }
            } else {
                // Busy: give glommio its turn when its preemption timer (250 us, set in
                // shard::runtime) fired, so timers and cross-shard messages keep flowing.
                glommio::yield_if_needed().await;
            }
        }
    }

    /// Polls our own ring without sleeping for up to `budget`. True if a completion
    /// arrived. Under a request/reply load the next request is typically a few
    /// microseconds away, and a sleep/wake-up pair costs more than that.
    fn spin_own_ring(&mut self, budget: Duration) -> io::Result<bool> {
        let start = std::time::Instant::now();
        loop {
            // The kernel raises IORING_SQ_TASKRUN when deferred work (a received packet,
            // a finished send) waits for us: enter only then, not once per poll.
            if self.ring.submission().taskrun() {
                self.enter()?;
                if !self.ring.completion().is_empty() {
                    return Ok(true);
                }
            }
            if start.elapsed() >= budget {
                return Ok(false);
            }
            std::hint::spin_loop();
        }
    }

    /// Waits up to `timeout` in our own ring for a completion. True if one arrived.
    fn wait_own_ring(&mut self, timeout: Duration) -> bool {
        let ts = types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        // ETIME (timeout) and EINTR are normal outcomes here.
        let _ = self.ring.submitter().submit_with_args(1, &args);
        !self.ring.completion().is_empty()
    }

    /// Submits queued entries and runs deferred completions (one `io_uring_enter`).
    fn enter(&mut self) -> io::Result<()> {
        let to_submit = self.ring.submission().len() as u32;
        // SAFETY: no timeout/sigmask argument is passed.
        let r = unsafe {
            self.ring.submitter().enter::<libc::sigset_t>(
                to_submit,
                0,
                IORING_ENTER_GETEVENTS,
                None,
            )
        };
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn handle_cqe(&mut self, ud: u64, res: i32, flags: u32) {
        let (op, slot, gen) = split_user_data(ud);
        match op {
            OP_ACCEPT => {
                // After a shutdown signal the listeners are shut: stop accepting.
                let stopping = crate::ops::stopping();
                if res >= 0 {
                    self.on_accept(res);
                } else if stopping {
                    return;
                } else if res != -libc::ECANCELED {
                    self.log_accept_error(res);
                    if !cqueue::more(flags) {
                        // Out of descriptors (EMFILE, ENFILE), memory...: re-arming now
                        // would fail again at once; retry a little later, and keep
                        // serving the connections we have meanwhile.
                        self.pause_accept(slot as usize);
                        return;
                    }
                }
                if !cqueue::more(flags) && !stopping {
                    self.arm_accept(slot as usize);
                }
            }
            OP_RECV => self.on_recv(slot, gen, res, flags),
            OP_SEND => self.on_send(slot, gen, res),
            _ => log::error!("unknown completion tag {op}"),
        }
    }

    /// Re-reads the limits this loop caches from the shard's configuration (at start
    /// and after every CONFIG SET), and gives the parsers the new request limits.
    fn refresh_limits(&mut self) {
        let d = self.shards.data.borrow();
        self.config_gen = d.config_gen;
        self.desk.set_access(
            d.config.requirepass.is_empty(),
            d.config.protected_mode && d.config.requirepass.is_empty(),
        );
        self.limits.proto_max_bulk_len =
            usize::try_from(d.config.proto_max_bulk_len).unwrap_or(usize::MAX);
        self.query_buffer_limit = d.config.client_query_buffer_limit;
        self.output_limits = d.output_limits;
        self.output_check_min = self
            .output_limits
            .iter()
            .flat_map(|c| [c[0], c[1]])
            .filter(|&v| v > 0)
            .min()
            .map_or(usize::MAX, |v| usize::try_from(v).unwrap_or(usize::MAX));
        let client_mem = client_memory_limit(
            d.config
                .extra
                .get("maxmemory-clients")
                .map_or("0", |s| s.as_str()),
            d.config.maxmemory,
        ) / d.nshards.max(1) as u64;
        drop(d);
        let limits = self.limits.clone();
        for conn in self.conns.slots.iter_mut().flatten() {
            conn.parser.set_limits(limits.clone());
        }
        let was = self.client_mem_limit.replace(client_mem);
        if was == 0 && client_mem > 0 {
            // A timer asks for a check ten times a second while the limit is set.
            let limit = self.client_mem_limit.clone();
            let due = self.client_mem_due.clone();
            let completions = self.completions.clone();
            glommio::spawn_local(async move {
                while limit.get() > 0 {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    due.set(true);
                    completions.notify();
                }
            })
            .detach();
            self.completions.spawned.set(true);
        }
    }

    /// Redis's client eviction (`maxmemory-clients`): while the buffers of this shard's
    /// clients (query buffer, pending output) take more than the shard's share of the
    /// limit, close the client that uses the most, except those with CLIENT NO-EVICT.
    fn evict_clients(&mut self) {
        let limit = self.client_mem_limit.get() as usize;
        if limit == 0 {
            return;
        }
        let mut usage: Vec<(usize, u32, u32)> = Vec::new();
        let mut total = 0usize;
        for (slot, c) in self.conns.slots.iter().enumerate() {
            if let Some(conn) = c {
                if conn.closing {
                    continue;
                }
                let mem = conn.rbuf.capacity()
                    + conn.wbuf.capacity()
                    + (conn.sending.len() - conn.send_off);
                total += mem;
                if !conn.client.borrow().no_evict {
                    usage.push((mem, slot as u32, conn.gen));
                }
            }
        }
        if total <= limit {
            return;
        }
        usage.sort_unstable_by_key(|u| std::cmp::Reverse(u.0));
        for (mem, slot, gen) in usage {
            if total <= limit {
                break;
            }
            let Some(conn) = self.conns.get(slot, gen) else {
                continue;
            };
            log::info!(
                "Evicting client: {} ({mem} bytes of buffers; maxmemory-clients)",
                conn.client.borrow().info_line()
            );
            conn.rbuf = Vec::new();
            conn.wbuf = Vec::new();
            conn.closing = true;
            conn.input_done = true;
            reset_on_close(conn.fd);
            total -= mem.min(total);
            self.shards.data.borrow_mut().stats.evicted_clients += 1;
            self.dirty.push((slot, gen));
        }
    }

    /// Logs a failed accept at most once a second, with the count of those not logged.
    fn log_accept_error(&mut self, res: i32) {
        let err = io::Error::from_raw_os_error(-res);
        let now = std::time::Instant::now();
        let (last, suppressed) = &mut self.accept_log;
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            *suppressed += 1;
            return;
        }
        if *suppressed > 0 {
            log::warn!(
                "accept failed: {err} ({} more accept failures in the last second not logged)",
                suppressed
            );
        } else {
            log::warn!("accept failed: {err}");
        }
        *last = Some(now);
        *suppressed = 0;
    }

    /// Stops accepting on listener `idx` for [`ACCEPT_RETRY`].
    fn pause_accept(&mut self, idx: usize) {
        if self.accept_paused[idx] {
            return;
        }
        self.accept_paused[idx] = true;
        let due = self.accept_retry_due.clone();
        let completions = self.completions.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(ACCEPT_RETRY).await;
            due.set(true);
            completions.notify();
        })
        .detach();
        // Let glommio run the timer task before the loop waits in its own ring.
        self.completions.spawned.set(true);
    }

    /// Refuses a freshly accepted socket with `msg` and closes it.
    fn refuse(&mut self, fd: RawFd, msg: &[u8]) {
        send_and_close(fd, msg);
        self.shards.data.borrow_mut().stats.rejected_connections += 1;
    }

    /// Closes `slot` for passing its output buffer limit, if it did (Redis's
    /// `checkClientOutputBufferLimits`: over the hard limit, or over the soft limit for
    /// longer than its seconds). True when the connection is now closing.
    fn over_output_limit(&mut self, slot: u32, gen: u32) -> bool {
        let check_min = self.output_check_min;
        let limits = self.output_limits;
        let Some(conn) = self.conns.get(slot, gen) else {
            return false;
        };
        if conn.closing {
            return false;
        }
        let pending = conn.wbuf.len() + conn.sending.len() - conn.send_off;
        if pending < check_min {
            conn.obuf_soft_since = None;
            return false;
        }
        let class = {
            let c = conn.client.borrow();
            if c.monitor {
                // Redis counts a monitor as a normal client, whose default limit is
                // none; a monitor that stops reading would then grow without bound.
                // Libellule gives it the normal class's limits when they are set and
                // the pubsub class's otherwise (docs/reliability.md).
                if limits[0][0] > 0 || limits[0][1] > 0 {
                    0
                } else {
                    2
                }
            } else if c.subs.active() {
                2
            } else {
                0
            }
        };
        let [hard, soft, secs] = limits[class];
        let pending = pending as u64;
        let mut over = hard > 0 && pending >= hard;
        if !over && soft > 0 && pending >= soft {
            let now = std::time::Instant::now();
            let since = *conn.obuf_soft_since.get_or_insert(now);
            over = now.duration_since(since) >= Duration::from_secs(secs);
        } else if !over {
            conn.obuf_soft_since = None;
        }
        if !over {
            return false;
        }
        log::warn!(
            "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
            conn.client.borrow().info_line()
        );
        conn.wbuf = Vec::new();
        conn.closing = true;
        conn.input_done = true;
        reset_on_close(conn.fd);
        self.shards
            .data
            .borrow_mut()
            .stats
            .output_limit_disconnections += 1;
        true
    }

    /// Sets up an accepted connection; its (slot, generation) unless refused.
    fn on_accept(&mut self, fd: RawFd) -> Option<(u32, u32)> {
        let maxclients = self.shards.data.borrow().config.maxclients;
        let n = CONNECTED_CLIENTS.fetch_add(1, Ordering::Relaxed) + 1;
        if n > maxclients {
            CONNECTED_CLIENTS.fetch_sub(1, Ordering::Relaxed);
            self.refuse(fd, b"-ERR max number of clients reached\r\n");
            return None;
        }
        let protect = {
            let d = self.shards.data.borrow();
            d.config.protected_mode && d.config.requirepass.is_empty()
        };
        if protect && !peer_is_local(fd) {
            // Redis's protected mode: with no password, only loopback clients.
            CONNECTED_CLIENTS.fetch_sub(1, Ordering::Relaxed);
            self.refuse(fd, DENIED);
            return None;
        }
        set_nodelay(fd);
        set_keepalive(fd, self.shards.data.borrow().config.tcp_keepalive);
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let mut data = self.shards.data.borrow_mut();
        let authenticated = data.config.requirepass.is_empty();
        let mut state = ClientState::new(id, data.id, authenticated);
        state.fd = fd;
        state.addr = peer_addr(fd, false);
        state.laddr = peer_addr(fd, true);
        let client: ClientRef = Rc::new(RefCell::new(state));
        data.clients.insert(id, client.clone());
        data.stats.total_connections += 1;
        data.stats.connected_clients += 1;
        drop(data);
        let limits = self.limits.clone();
        let quiet = Rc::new(std::cell::Cell::new(false));
        let desk_client = client.clone();
        let desk_quiet = quiet.clone();
        let slot = self.conns.insert(|gen| Conn {
            fd,
            gen,
            rbuf: Vec::new(),
            parser: Parser::new(limits),
            wbuf: Vec::new(),
            sending: Vec::new(),
            send_off: 0,
            send_inflight: false,
            recv_armed: true,
            waiting: false,
            close_after_flush: false,
            input_done: false,
            first_request: true,
            closing: false,
            eof: false,
            quiet,
            client,
            obuf_soft_since: None,
        });
        let gen = self.conns.gens[slot as usize];
        self.desk.register(slot, gen, fd, desk_quiet, desk_client);
        self.by_client.insert(id, (slot, gen));
        if !authenticated {
            if let Some(c) = self.conns.get(slot, gen) {
                c.parser.set_auth_required(true);
            }
        }
        self.arm_recv(slot, gen, fd);
        Some((slot, gen))
    }

    /// Takes back what the busy desk held while a script kept this shard busy: input
    /// and replies of known connections, and connections it accepted.
    #[cold]
    fn adopt_from_desk(&mut self) {
        let adopt = self.desk.take();
        for ((slot, gen), held) in adopt.held {
            self.adopt_held(slot, gen, held);
        }
        for (fd, held) in adopt.accepted {
            if let Some((slot, gen)) = self.on_accept(fd) {
                self.adopt_held(slot, gen, held);
            }
        }
        if !adopt.errors.is_empty() {
            let mut data = self.shards.data.borrow_mut();
            for msg in adopt.errors {
                data.count_error(&msg);
            }
        }
    }

    fn adopt_held(&mut self, slot: u32, gen: u32, held: super::busy::Held) {
        let Some(conn) = self.conns.get(slot, gen) else {
            return;
        };
        if !held.input.is_empty() {
            let mut input = held.input;
            input.extend_from_slice(&conn.rbuf);
            conn.rbuf = input;
            conn.first_request = false;
        }
        if !held.output.is_empty() {
            let mut output = held.output;
            output.extend_from_slice(&conn.wbuf);
            conn.wbuf = output;
        }
        if held.quit {
            conn.close_after_flush = true;
            conn.input_done = true;
        }
        conn.quiet.set(false);
        self.dirty.push((slot, gen));
    }

    fn on_recv(&mut self, slot: u32, gen: u32, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let Some(conn) = self.conns.get(slot, gen) else {
            if let Some(bid) = bid {
                self.bufring.push(bid);
            }
            return;
        };
        if res > 0 {
            let bid = bid.expect("recv with buffer select");
            conn.quiet.set(false);
            if !conn.closing {
                conn.rbuf
                    .extend_from_slice(self.bufring.buf(bid, res as usize));
                if conn.rbuf.len() as u64 > self.query_buffer_limit {
                    // Redis closes a client whose unparsed input passes the limit.
                    log::warn!(
                        "closing client that reached max query buffer length ({} bytes)",
                        conn.rbuf.len()
                    );
                    conn.rbuf = Vec::new();
                    conn.closing = true;
                    reset_on_close(conn.fd);
                }
            }
            self.bufring.push(bid);
            self.shards.data.borrow_mut().stats.net_input_bytes += res as u64;
            self.dirty.push((slot, gen));
        } else if let Some(bid) = bid {
            self.bufring.push(bid);
        }
        if !more {
            let conn = self.conns.get(slot, gen).expect("live");
            if res == 0 && !conn.closing {
                // The peer half-closed: answer what it already sent, then close
                // (redis-server does the same).
                conn.recv_armed = false;
                conn.eof = true;
                conn.close_after_flush = true;
                self.dirty.push((slot, gen));
            } else if res <= 0 && res != -libc::ENOBUFS || conn.closing {
                conn.recv_armed = false;
                conn.eof = true;
                conn.closing = true;
                self.dirty.push((slot, gen));
            } else {
                let fd = conn.fd;
                self.arm_recv(slot, gen, fd);
            }
        }
    }

    fn on_send(&mut self, slot: u32, gen: u32, res: i32) {
        let Some(conn) = self.conns.get(slot, gen) else {
            return;
        };
        conn.send_inflight = false;
        if res < 0 {
            conn.closing = true;
            conn.sending.clear();
            conn.wbuf.clear();
        } else {
            conn.send_off += res as usize;
            if conn.send_off < conn.sending.len() {
                // Partial send: send the rest before anything newer.
                let ptr = conn.sending[conn.send_off..].as_ptr();
                let len = (conn.sending.len() - conn.send_off) as u32;
                let fd = conn.fd;
                conn.send_inflight = true;
                self.shards.data.borrow_mut().stats.net_output_bytes += res as u64;
                let sqe = opcode::Send::new(types::Fd(fd), ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(OP_SEND, slot, gen));
                self.push_sqe(sqe);
                return;
            }
            conn.sending.clear();
            conn.send_off = 0;
            self.shards.data.borrow_mut().stats.net_output_bytes += res as u64;
        }
        self.dirty.push((slot, gen));
    }

    fn process_dirty(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        {
            let shards = self.shards.clone();
            let mut data = shards.data.borrow_mut();
            for &(slot, gen) in &dirty {
                let Some(conn) = self.conns.get(slot, gen) else {
                    continue;
                };
                // A client that does not read its replies: stop running its requests
                // until the output drains (see OUTPUT_PAUSE).
                let paused = conn.wbuf.len() >= OUTPUT_PAUSE;
                if !conn.closing && !conn.rbuf.is_empty() && !paused {
                    let lctx = LoopCtx {
                        shards: &shards,
                        completions: &self.completions,
                        slot,
                        gen,
                    };
                    process_input(conn, &mut data, &lctx);
                }
            }
        }
        if self.desk.has_work() {
            // A script kept the shard busy: the next turn runs what the desk held.
            self.adopt_from_desk();
        }
        for &(slot, gen) in &dirty {
            self.over_output_limit(slot, gen);
            let Some(conn) = self.conns.get(slot, gen) else {
                continue;
            };
            if conn.waiting && (conn.closing || conn.eof) {
                // A blocked command (BLPOP...) of a client that went away gives up.
                let id = {
                    let mut c = conn.client.borrow_mut();
                    c.close_requested = true;
                    c.id
                };
                self.shards.data.borrow_mut().blocking.client_gone(id);
            } else if conn.waiting && conn.client.borrow().close_requested {
                let id = conn.client.borrow().id;
                self.shards.data.borrow_mut().blocking.client_gone(id);
            }
            if conn.closing {
                // Drop unsent replies; close when nothing is in flight.
                if conn.recv_armed {
                    // SAFETY: shutting down our own socket; completes the pending recv.
                    unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
                }
                if !conn.recv_armed && !conn.send_inflight && !conn.waiting {
                    self.close(slot);
                }
                continue;
            }
            // Nothing pending either way: the busy desk may answer it directly.
            conn.quiet.set(
                conn.rbuf.is_empty()
                    && conn.wbuf.is_empty()
                    && !conn.send_inflight
                    && !conn.waiting
                    && !conn.close_after_flush
                    && !conn.first_request,
            );
            if conn.wants_send() {
                std::mem::swap(&mut conn.sending, &mut conn.wbuf);
                conn.send_off = 0;
                conn.send_inflight = true;
                let ptr = conn.sending.as_ptr();
                let len = conn.sending.len() as u32;
                let fd = conn.fd;
                let sqe = opcode::Send::new(types::Fd(fd), ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(OP_SEND, slot, gen));
                self.push_sqe(sqe);
            } else if conn.close_after_flush
                && !conn.send_inflight
                && conn.wbuf.is_empty()
                && !conn.waiting
            {
                conn.closing = true;
                if conn.recv_armed {
                    // SAFETY: as above.
                    unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
                } else if !conn.waiting {
                    self.close(slot);
                }
            }
        }
    }

    /// Appends bytes queued for local clients (MONITOR feed) to their output.
    fn deliver_pushes(&mut self) {
        let pushes = std::mem::take(&mut self.shards.data.borrow_mut().pushes);
        for (id, bytes) in pushes {
            if let Some(&(slot, gen)) = self.by_client.get(&id) {
                if let Some(conn) = self.conns.get(slot, gen) {
                    conn.wbuf.extend_from_slice(&bytes);
                    conn.quiet.set(false);
                    self.dirty.push((slot, gen));
                }
            }
        }
    }

    /// Marks connections whose client was killed (CLIENT KILL from any shard).
    fn check_killed(&mut self) {
        let pending = std::mem::replace(&mut self.shards.data.borrow_mut().kill_pending, false);
        if !pending {
            return;
        }
        for (slot, c) in self.conns.slots.iter_mut().enumerate() {
            if let Some(conn) = c {
                if conn.client.borrow().close_requested {
                    conn.close_after_flush = true;
                    conn.input_done = true;
                    self.dirty.push((slot as u32, conn.gen));
                }
            }
        }
    }

    fn close(&mut self, slot: u32) {
        if let Some(conn) = self.conns.remove(slot) {
            self.desk.unregister(slot);
            // SAFETY: no operation on this fd is in flight any more.
            unsafe { libc::close(conn.fd) };
            let (id, monitor) = {
                let c = conn.client.borrow();
                (c.id, c.monitor)
            };
            if monitor {
                super::monitor::remove(id);
            }
            self.by_client.remove(&id);
            let mut data = self.shards.data.borrow_mut();
            {
                let mut c = conn.client.borrow_mut();
                c.multi = None;
                super::multi::unwatch_all(&mut c, &mut data, &self.shards);
                let subs = std::mem::take(&mut c.subs);
                super::pubsub::forget_client(&mut data, id, &subs);
            }
            data.clients.remove(&id);
            data.stats.connected_clients = data.stats.connected_clients.saturating_sub(1);
            CONNECTED_CLIENTS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Idle wait: ready when the ring fd is readable or a local completion was queued.
struct WaitIdle<'a> {
    readable: Pin<Box<dyn Future<Output = io::Result<()>>>>,
    completions: &'a Completions,
}

impl Future for WaitIdle<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.completions.register(cx.waker()) {
            return Poll::Ready(());
        }
        match self.readable.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Resets the eventfd counter (non-blocking).
fn drain_eventfd(fd: RawFd) {
    let mut v: u64 = 0;
    // SAFETY: reading 8 bytes into a u64 from our own non-blocking eventfd.
    unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
}

/// Enables TCP keepalive probes every `interval` seconds (0 = off), like Redis's
/// `tcp-keepalive`.
fn set_keepalive(fd: RawFd, interval: u64) {
    if interval == 0 {
        return;
    }
    let sock = std::mem::ManuallyDrop::new(unsafe {
        // SAFETY: borrowed only for the call; ManuallyDrop keeps the fd open.
        <socket2::Socket as std::os::unix::io::FromRawFd>::from_raw_fd(fd)
    });
    let secs = Duration::from_secs(interval);
    let ka = socket2::TcpKeepalive::new()
        .with_time(secs)
        .with_interval(Duration::from_secs((interval / 3).max(1)))
        .with_retries(3);
    let _ = sock.set_tcp_keepalive(&ka);
}

/// Makes the coming `close` of a client dropped for a limit reset the connection
/// (SO_LINGER 0) instead of closing it gracefully. Our recv drains the socket, so a
/// graceful close leaves an orphaned socket in FIN-WAIT-2 that a client still sending
/// cannot get past (zero window) for `tcp_fin_timeout`, and whose send queue (up to
/// megabytes for a stalled subscriber) stays allocated; a reset frees both at once.
fn reset_on_close(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setting an option on a socket we own.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: setting an option on a socket we own.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// `maxmemory-clients` in bytes: a size, or a percentage of `maxmemory` (0 when
/// `maxmemory` is 0, as in Redis).
fn client_memory_limit(value: &str, maxmemory: u64) -> u64 {
    match value.strip_suffix('%') {
        Some(pct) => pct
            .parse::<u64>()
            .map_or(0, |p| maxmemory.saturating_mul(p) / 100),
        None => value.parse().unwrap_or(0),
    }
}

/// True when the peer is on the loopback interface (127.0.0.0/8, ::1, or an IPv4
/// loopback mapped into IPv6) or a Unix socket: the clients protected mode lets in.
/// Writes `msg` to a freshly accepted socket without waiting, then closes it (refusals:
/// maxclients, protected mode).
pub(crate) fn send_and_close(fd: RawFd, msg: &[u8]) {
    // SAFETY: fd is a freshly accepted socket the caller owns and gives up here.
    unsafe {
        libc::send(
            fd,
            msg.as_ptr() as *const _,
            msg.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        );
        libc::close(fd);
    }
}

pub(crate) fn peer_is_local(fd: RawFd) -> bool {
    let sock = std::mem::ManuallyDrop::new(unsafe {
        // SAFETY: borrowed only for the call; ManuallyDrop keeps the fd open.
        <socket2::Socket as std::os::unix::io::FromRawFd>::from_raw_fd(fd)
    });
    let Ok(addr) = sock.peer_addr() else {
        return false;
    };
    if addr.is_unix() {
        return true;
    }
    match addr.as_socket().map(|a| a.ip()) {
        Some(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Some(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// `ip:port` of the peer (or the local end when `local`).
fn peer_addr(fd: RawFd, local: bool) -> String {
    let sock = std::mem::ManuallyDrop::new(unsafe {
        // SAFETY: borrowed only for the call; ManuallyDrop keeps the fd open.
        <socket2::Socket as std::os::unix::io::FromRawFd>::from_raw_fd(fd)
    });
    let addr = if local {
        sock.local_addr()
    } else {
        sock.peer_addr()
    };
    match addr.ok().and_then(|a| a.as_socket()) {
        Some(a) => a.to_string(),
        None => String::from("?:0"),
    }
}
