//! Serving a shard's own clients while a Lua script runs past `busy-reply-threshold`.
//!
//! A slow script occupies its shard's thread: the network loop that would read the other
//! clients of that shard is suspended under the script's call stack. Clients homed on
//! other shards already get `-BUSY` from their own loops; the ones of the busy shard (all
//! of them with `--io_threads 1`) are served from here, called by the script's time-limit
//! hook about once a millisecond, like Redis's `processEventsWhileBlocked`.
//!
//! The desk never touches the loop's io_uring. The loop's ring runs with
//! `IORING_SETUP_DEFER_TASKRUN`, so its armed multishot receives and accepts only move
//! data when the loop itself enters the ring: until then bytes wait in the sockets and
//! new connections in the listen backlog. The desk reads them first with plain
//! non-blocking `recv`/`accept4` calls, so ordering is kept: whatever it took precedes
//! whatever the ring takes later.
//!
//! It only reads connections that are *quiet*: no unparsed input, no unsent or in-flight
//! output, no command waiting (the loop keeps each connection's flag up to date).
//! Anything else could make a `-BUSY` overtake an earlier reply. For each complete
//! request it answers like Redis 7.0 does during a busy script:
//! - `SCRIPT KILL` stops the script (or answers `-UNKILLABLE`);
//! - `SHUTDOWN NOSAVE` (also with `NOW`/`FORCE`) exits the process at once;
//! - `QUIT` answers `+OK` and closes;
//! - the other commands Redis still runs while busy (HELLO, AUTH, MULTI, WATCH, RESET...)
//!   are kept, with everything after them, for the loop to run once the script ends;
//! - everything else gets `-BUSY ...` (`-EXECABORT ...` for an EXEC inside MULTI, and a
//!   refused command inside MULTI dooms the transaction, as in Redis).
//!
//! When the loop runs again it adopts what the desk holds ([`BusyDesk::take`]): bytes of
//! an incomplete request go back into the connection's input, unsent replies into its
//! output, and connections accepted meanwhile become regular connections.

use super::client::ClientRef;
use crate::protocol::parse::{Limits, Parser};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The `-BUSY` error Redis 7.0 gives.
pub const BUSY_ERROR: &[u8] =
    b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Shortest interval between two desk passes.
const EVERY: Duration = Duration::from_millis(1);

/// What the loop shares with the desk about one connection.
struct Known {
    gen: u32,
    fd: RawFd,
    quiet: Rc<Cell<bool>>,
    client: ClientRef,
}

/// What the desk holds for one connection until the loop runs again.
#[derive(Default)]
pub struct Held {
    /// Received bytes not answered yet (an incomplete request, or requests kept for the
    /// loop).
    pub input: Vec<u8>,
    /// Replies the socket did not take yet.
    pub output: Vec<u8>,
    /// The peer closed, or QUIT: read no more.
    pub closing: bool,
    /// QUIT was answered: the loop closes the connection once `output` is sent.
    pub quit: bool,
    /// Stop answering: the next request must wait for the loop.
    deferred: bool,
}

/// One shard's desk. The loop owns it and registers it for its thread.
pub struct BusyDesk {
    listeners: Vec<RawFd>,
    known: RefCell<HashMap<u32, Known>>,
    held: RefCell<HashMap<(u32, u32), Held>>,
    accepted: RefCell<Vec<(RawFd, Held)>>,
    last: Cell<Option<Instant>>,
    /// Error replies given (folded into the shard's error statistics later).
    errors: RefCell<Vec<Vec<u8>>>,
    limits: Limits,
    nshards: usize,
    /// No password: a connection accepted here starts authenticated.
    open: Cell<bool>,
    /// Protected mode applies (no password): refuse non-loopback peers.
    protect: Cell<bool>,
}

thread_local! {
    static DESK: RefCell<Option<Rc<BusyDesk>>> = const { RefCell::new(None) };
}

/// What the loop adopts after a busy period.
pub struct Adopt {
    /// Per connection (slot, generation).
    pub held: Vec<((u32, u32), Held)>,
    /// Connections accepted by the desk.
    pub accepted: Vec<(RawFd, Held)>,
    /// Error replies given.
    pub errors: Vec<Vec<u8>>,
}

impl BusyDesk {
    /// A desk for a loop listening on `listeners`; registered for this thread.
    pub fn install(listeners: Vec<RawFd>, limits: Limits, nshards: usize) -> Rc<BusyDesk> {
        let desk = Rc::new(BusyDesk {
            listeners,
            known: RefCell::new(HashMap::new()),
            held: RefCell::new(HashMap::new()),
            accepted: RefCell::new(Vec::new()),
            last: Cell::new(None),
            errors: RefCell::new(Vec::new()),
            limits,
            nshards,
            open: Cell::new(true),
            protect: Cell::new(false),
        });
        DESK.with(|d| *d.borrow_mut() = Some(desk.clone()));
        desk
    }

    /// Follows the configuration: whether a password is set, whether protected mode
    /// refuses non-loopback clients.
    pub fn set_access(&self, open: bool, protect: bool) {
        self.open.set(open);
        self.protect.set(protect);
    }

    /// A connection was set up in `slot`.
    pub fn register(
        &self,
        slot: u32,
        gen: u32,
        fd: RawFd,
        quiet: Rc<Cell<bool>>,
        client: ClientRef,
    ) {
        self.known.borrow_mut().insert(
            slot,
            Known {
                gen,
                fd,
                quiet,
                client,
            },
        );
    }

    /// The connection in `slot` is gone.
    pub fn unregister(&self, slot: u32) {
        self.known.borrow_mut().remove(&slot);
    }

    /// True when the desk holds something for the loop.
    #[inline]
    pub fn has_work(&self) -> bool {
        !self.held.borrow().is_empty()
            || !self.accepted.borrow().is_empty()
            || !self.errors.borrow().is_empty()
    }

    /// Hands what the desk holds to the loop.
    pub fn take(&self) -> Adopt {
        let held = self.held.borrow_mut().drain().collect();
        let accepted = std::mem::take(&mut *self.accepted.borrow_mut());
        self.last.set(None);
        Adopt {
            held,
            accepted,
            errors: std::mem::take(&mut *self.errors.borrow_mut()),
        }
    }

    /// One pass: accept, read quiet connections, answer.
    fn serve(&self) {
        let now = Instant::now();
        if self
            .last
            .get()
            .is_some_and(|t| now.duration_since(t) < EVERY)
        {
            return;
        }
        self.last.set(Some(now));
        for &l in &self.listeners {
            loop {
                // The listening socket may be blocking: accept only what is pending.
                let mut pfd = libc::pollfd {
                    fd: l,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd, no wait.
                if unsafe { libc::poll(&mut pfd, 1, 0) } != 1 || pfd.revents & libc::POLLIN == 0 {
                    break;
                }
                // SAFETY: plain syscall on our listening socket.
                let fd = unsafe {
                    libc::accept4(
                        l,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    )
                };
                if fd < 0 {
                    break;
                }
                if self.protect.get() && !super::net::peer_is_local(fd) {
                    super::net::send_and_close(fd, super::net::DENIED);
                    continue;
                }
                self.accepted.borrow_mut().push((fd, Held::default()));
            }
        }
        let targets: Vec<(u32, u32, RawFd, ClientRef)> = self
            .known
            .borrow()
            .iter()
            .filter(|(_, k)| k.quiet.get())
            .map(|(&slot, k)| (slot, k.gen, k.fd, k.client.clone()))
            .collect();
        for (slot, gen, fd, client) in targets {
            let mut held = self.held.borrow_mut();
            let h = held.entry((slot, gen)).or_default();
            self.serve_one(fd, h, Some(&client));
            if h.input.is_empty() && h.output.is_empty() && !h.closing {
                held.remove(&(slot, gen));
            }
        }
        let mut accepted = std::mem::take(&mut *self.accepted.borrow_mut());
        for (fd, h) in accepted.iter_mut() {
            self.serve_one(*fd, h, None);
        }
        self.accepted.borrow_mut().extend(accepted);
    }

    /// Reads what `fd` has, answers complete requests, writes what it can.
    fn serve_one(&self, fd: RawFd, h: &mut Held, client: Option<&ClientRef>) {
        // A flood during a busy script waits in the socket instead of in memory.
        if !h.closing && h.input.len() <= 1 << 20 {
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: reading into our own buffer.
                let n = unsafe {
                    libc::recv(
                        fd,
                        buf.as_mut_ptr() as *mut _,
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n > 0 {
                    h.input.extend_from_slice(&buf[..n as usize]);
                    if h.input.len() > 1 << 20 {
                        break;
                    }
                } else {
                    if n == 0 {
                        h.closing = true;
                    }
                    break;
                }
            }
        }
        if !h.deferred {
            self.answer(h, client);
        }
        if !h.output.is_empty() {
            // SAFETY: writing our own buffer to our socket.
            let n = unsafe {
                libc::send(
                    fd,
                    h.output.as_ptr() as *const _,
                    h.output.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n > 0 {
                h.output.drain(..n as usize);
            }
        }
        if h.quit && h.output.is_empty() {
            // The peer sees the close now; the loop releases the descriptor later.
            // SAFETY: shutting down our own socket.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }

    /// Answers the complete requests at the front of `h.input`.
    fn answer(&self, h: &mut Held, client: Option<&ClientRef>) {
        let mut parser = Parser::new(self.limits.clone());
        let mut pos = 0;
        while pos < h.input.len() && !h.closing {
            let input = &h.input[pos..];
            let consumed = match parser.parse(input) {
                Ok(Some(n)) => n,
                // Incomplete, or a protocol error the loop will report.
                _ => break,
            };
            let args = parser.args(input);
            if args.is_empty() {
                parser.reset();
                pos += consumed;
                continue;
            }
            let name = args.get(0);
            let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
            let arg = |i: usize, s: &str| {
                args.len() > i && args.get(i).eq_ignore_ascii_case(s.as_bytes())
            };
            let in_multi = client
                .and_then(|c| c.try_borrow().ok().map(|c| c.multi.is_some()))
                .unwrap_or(false);
            let authenticated = match client {
                Some(c) => c.try_borrow().map(|c| c.authenticated).unwrap_or(false),
                None => self.open.get(),
            };
            let allowed_busy = crate::shard::registry()
                .lookup(name)
                .is_some_and(|s| s.flags & crate::commands::flags::ALLOW_BUSY != 0);
            let deferrable = allowed_busy && !is("script") && !is("shutdown");
            if !authenticated && !deferrable {
                // Authentication comes before the busy check in Redis; AUTH and HELLO
                // wait for the loop like the other commands Redis runs while busy.
                self.error(&mut h.output, b"NOAUTH Authentication required.");
                parser.reset();
                pos += consumed;
                continue;
            }
            if is("script") && args.len() == 2 && arg(1, "kill") {
                match crate::scripting::engine::kill(self.nshards) {
                    crate::scripting::engine::KillOutcome::Unkillable => {
                        self.error(&mut h.output, crate::commands::scripting::UNKILLABLE)
                    }
                    _ => h.output.extend_from_slice(b"+OK\r\n"),
                }
            } else if is("shutdown") && args.len() >= 2 && arg(1, "nosave") {
                log::warn!("User requested shutdown with SHUTDOWN NOSAVE while a script was busy: exiting now.");
                crate::ops::notify("STOPPING=1");
                std::process::exit(0);
            } else if is("quit") {
                h.output.extend_from_slice(b"+OK\r\n");
                h.closing = true;
                h.quit = true;
            } else if deferrable {
                // Redis runs it now; it waits for the loop here, with what follows.
                h.deferred = true;
                break;
            } else if in_multi && is("exec") {
                if let Some(Ok(mut c)) = client.map(|c| c.try_borrow_mut()) {
                    c.multi = None;
                }
                let mut m = b"EXECABORT Transaction discarded because of: ".to_vec();
                m.extend_from_slice(BUSY_ERROR);
                self.error(&mut h.output, &m);
            } else {
                if let Some(Ok(mut c)) = client.map(|c| c.try_borrow_mut()) {
                    if let Some(m) = c.multi.as_mut() {
                        m.aborted = true;
                    }
                }
                self.error(&mut h.output, BUSY_ERROR);
            }
            parser.reset();
            pos += consumed;
        }
        h.input.drain(..pos);
    }

    fn error(&self, out: &mut Vec<u8>, msg: &[u8]) {
        out.push(b'-');
        out.extend_from_slice(msg);
        out.extend_from_slice(b"\r\n");
        self.errors.borrow_mut().push(msg.to_vec());
    }
}

/// Called by the script time-limit hook while a script is past the busy threshold.
pub fn serve_while_busy() {
    let desk = DESK.with(|d| d.borrow().clone());
    if let Some(desk) = desk {
        desk.serve();
    }
}
