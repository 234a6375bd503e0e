//! A client connection and the command dispatcher.
//!
//! [`process_input`] parses every complete request in a connection's read buffer and runs
//! it. A keyed command whose keys all live on this shard runs inline, with no message and
//! no allocation beyond its reply. Anything else (keys on another shard, keys spread over
//! shards, commands that need every shard, keys locked by a cross-shard command) becomes
//! a task on this shard's executor; the connection stops reading requests until that task
//! hands back the reply, so replies always leave in request order.

use super::client::{ClientRef, ReplyMode};
use crate::commands::{
    arity_error, flags, unknown_command_error, AsyncCtx, CommandSpec, ConnCtx, Ctx, Handler,
};
use crate::protocol::parse::{Args, OwnedArgs, Parser};
use crate::protocol::reply::ReplyWriter;
use crate::shard::{now_ms, registry, ShardData, Shards};
use std::cell::{Cell, RefCell};
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::task::Waker;

/// Replies of finished async commands, waiting for the loop to pick them up.
#[derive(Default)]
pub struct Completions {
    /// (connection slot, generation, encoded reply).
    pub ready: RefCell<Vec<(u32, u32, Vec<u8>)>>,
    waker: RefCell<Option<Waker>>,
    notified: Cell<bool>,
    /// Set when a command task was spawned (the loop must let glommio run it before
    /// waiting in its own ring).
    pub spawned: Cell<bool>,
}

impl Completions {
    /// Queues a finished reply and wakes the loop.
    pub fn complete(&self, slot: u32, gen: u32, reply: Vec<u8>) {
        self.ready.borrow_mut().push((slot, gen, reply));
        self.notify();
    }

    /// Wakes the loop if it is waiting.
    pub fn notify(&self) {
        self.notified.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Registers the loop's waker; returns true if a notification is already pending.
    pub fn register(&self, waker: &Waker) -> bool {
        if self.notified.replace(false) {
            return true;
        }
        *self.waker.borrow_mut() = Some(waker.clone());
        false
    }

    /// Clears a pending notification.
    pub fn clear(&self) {
        self.notified.set(false);
    }
}

/// One client connection of a shard.
pub struct Conn {
    /// Socket.
    pub fd: RawFd,
    /// Slot generation (guards stale completions).
    pub gen: u32,
    /// Unconsumed input.
    pub rbuf: Vec<u8>,
    /// Request parser state.
    pub parser: Parser,
    /// Replies not yet handed to the kernel.
    pub wbuf: Vec<u8>,
    /// Buffer owned by the send in flight.
    pub sending: Vec<u8>,
    /// Bytes of `sending` already sent.
    pub send_off: usize,
    /// A send is in flight.
    pub send_inflight: bool,
    /// A multishot recv is armed.
    pub recv_armed: bool,
    /// An async command is running; input processing is paused.
    pub waiting: bool,
    /// Close once pending replies are written.
    pub close_after_flush: bool,
    /// Stop parsing input (QUIT, protocol error, CLIENT KILL); unlike a peer's
    /// half-close, which still lets the requests already received run.
    pub input_done: bool,
    /// Closing: no more input; the fd closes when no operation is in flight.
    pub closing: bool,
    /// Peer closed its side.
    pub eof: bool,
    /// No request parsed yet: the first one may be an HTTP `GET /metrics`.
    pub first_request: bool,
    /// Nothing pending in either direction (shared with the [`super::busy`] desk, which
    /// may answer this connection while a script keeps the shard busy).
    pub quiet: Rc<Cell<bool>>,
    /// Client state.
    pub client: ClientRef,
    /// Since when the output has been over its class's soft limit
    /// (`client-output-buffer-limit`), if it is.
    pub obuf_soft_since: Option<std::time::Instant>,
}

impl Conn {
    /// True when the connection has replies to send and no send in flight.
    pub fn wants_send(&self) -> bool {
        !self.send_inflight && !self.wbuf.is_empty()
    }
}

/// Replies waiting above this many bytes pause the parsing of a connection's further
/// requests until they are handed to the kernel: a client that pipelines without
/// reading costs at most about twice this much output, plus its query buffer (which
/// `client-query-buffer-limit` bounds).
pub const OUTPUT_PAUSE: usize = 32 << 20;

/// What the dispatcher needs from the loop.
pub struct LoopCtx<'a> {
    /// The shard set.
    pub shards: &'a Rc<Shards>,
    /// Where async commands report back.
    pub completions: &'a Rc<Completions>,
    /// This connection's slot.
    pub slot: u32,
    /// This connection's slot generation.
    pub gen: u32,
}

/// Parses and runs every complete request in `conn.rbuf` until it is empty, the
/// connection waits for an async command, or it is closing.
pub fn process_input(conn: &mut Conn, data: &mut ShardData, lctx: &LoopCtx) {
    if conn.first_request && !probe_http(conn) {
        return;
    }
    let mut pos = 0usize;
    let now = now_ms();
    let mut batch: Vec<BatchItem> = Vec::new();
    // The clock reading that ended the previous command of this pipeline (latency
    // tracking): the next command's start, so a pipeline pays one read per command.
    let mut mark: Option<u64> = None;
    // Frames from `pos` on whose keys were prefetched already.
    let mut prefetched = 0usize;
    while !conn.waiting && !conn.closing && !conn.input_done && conn.wbuf.len() < OUTPUT_PAUSE {
        let input = &conn.rbuf[pos..];
        if input.is_empty() || input.len() < conn.parser.needed() {
            break;
        }
        if prefetched == 0 && !conn.parser.in_progress() {
            prefetched = prefetch_ahead(input, data, conn.client.borrow().db);
        }
        match conn.parser.parse(input) {
            Ok(Some(consumed)) => {
                prefetched = prefetched.saturating_sub(1);
                let args = conn.parser.args(input);
                if !args.is_empty() {
                    let client = conn.client.clone();
                    let mut client_ref = client.borrow_mut();
                    if !batch.is_empty() {
                        // A batch of commands for other shards is being gathered: add this
                        // one if it is a plain keyed command, else run the batch first.
                        if !add_to_batch(args, &mut client_ref, data, lctx, now, &mut batch) {
                            conn.parser.reset();
                            break;
                        }
                    } else {
                        execute(
                            args,
                            &mut conn.wbuf,
                            &client,
                            &mut client_ref,
                            data,
                            lctx,
                            now,
                            &mut conn.waiting,
                            &mut batch,
                            &mut mark,
                        );
                    }
                    if client_ref.close_requested {
                        conn.close_after_flush = true;
                        conn.input_done = true;
                    }
                    conn.parser.set_auth_required(!client_ref.authenticated);
                }
                conn.parser.reset();
                pos += consumed;
                if batch.len() >= MAX_BATCH {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                if !batch.is_empty() {
                    // Answer the batch first; the error is met again afterwards.
                    conn.parser.reset();
                    break;
                }
                let mut w = ReplyWriter::new(&mut conn.wbuf, false);
                w.error(e.message().as_bytes());
                data.count_error(e.message().as_bytes());
                conn.close_after_flush = true;
                conn.input_done = true;
                pos = conn.rbuf.len();
                break;
            }
        }
    }
    // Clients blocked on keys this batch made ready are served now, after it.
    crate::shard::blocking::serve_if_ready(data);
    if pos > 0 {
        if pos >= conn.rbuf.len() {
            conn.rbuf.clear();
            if conn.rbuf.capacity() > 1 << 20 {
                // A big value passed through: give the buffer back (it counts against
                // maxmemory) rather than keep megabytes per idle connection.
                conn.rbuf = Vec::new();
            }
        } else {
            conn.rbuf.drain(..pos);
        }
    }
    if !batch.is_empty() {
        let shards = lctx.shards.clone();
        let fut = Box::pin(async move { run_batch(&shards, batch).await });
        spawn_future(fut, lctx, &mut conn.waiting);
    }
}

/// Prefetches the keys of the next complete frames in `input` (a pipeline) from the
/// table of database `db`, when there are two or more: their cache misses then overlap
/// instead of adding up (see [`crate::storage::Table::prefetch`]). Keys other shards
/// own are skipped. Returns how many frames it looked at (at least 1).
#[inline]
fn prefetch_ahead(input: &[u8], data: &ShardData, db: usize) -> usize {
    use crate::storage::table::PREFETCH_BATCH;
    let mut keys: [&[u8]; PREFETCH_BATCH] = [&[]; PREFETCH_BATCH];
    let (frames, mut n) = crate::protocol::lookahead::second_args(input, &mut keys);
    if frames >= 2 {
        if data.nshards > 1 {
            let mut kept = 0;
            for i in 0..n {
                if crate::shard::key_shard(keys[i], data.nshards) == data.id {
                    keys[kept] = keys[i];
                    kept += 1;
                }
            }
            n = kept;
        }
        if let Some(db) = data.dbs.get(db) {
            db.prefetch(&keys[..n]);
        }
    }
    frames.max(1)
}

/// Handles a connection's first bytes being an HTTP `GET /metrics` (answered with the
/// Prometheus text, then the connection closes). Returns false when the input must not
/// be parsed as Redis requests (answered, or waiting for more bytes).
#[cold]
fn probe_http(conn: &mut Conn) -> bool {
    use crate::metrics::{http_request, http_response, HttpProbe};
    match http_request(&conn.rbuf, conn.eof) {
        HttpProbe::NotHttp => {
            conn.first_request = false;
            true
        }
        HttpProbe::NeedMore => false,
        HttpProbe::Metrics => {
            conn.first_request = false;
            conn.wbuf.extend_from_slice(&http_response());
            conn.rbuf.clear();
            conn.close_after_flush = true;
            conn.input_done = true;
            false
        }
    }
}

/// Most commands gathered into one cross-shard batch.
const MAX_BATCH: usize = 1024;

/// One keyed command bound for a shard, gathered from a pipeline.
pub struct BatchItem {
    owner: usize,
    /// The command's registry index (for its statistics).
    idx: usize,
    spec: &'static CommandSpec,
    db: usize,
    resp3: bool,
    args: OwnedArgs,
}

/// Adds a plain keyed command (all keys on one shard) to `batch`; false if the command
/// needs anything else (the batch then runs first).
fn add_to_batch(
    args: Args,
    client: &mut super::client::ClientState,
    data: &mut ShardData,
    lctx: &LoopCtx,
    now: u64,
    batch: &mut Vec<BatchItem>,
) -> bool {
    if client.reply_mode != ReplyMode::On
        || !client.authenticated
        || client.multi.is_some()
        || client.subs.active()
        || crate::scripting::engine::any_slow()
    {
        return false;
    }
    let Some((idx, spec)) = registry().lookup_indexed(args.get(0)) else {
        return false;
    };
    let idx = registry().stat_index(idx, &args);
    if !spec.arity_ok(args.len()) {
        return false;
    }
    let Handler::Keyed { .. } = spec.handler else {
        return false;
    };
    let Some(owner) = key_owner(spec, &args, lctx.shards) else {
        return false;
    };
    let owner = owner.unwrap_or(data.id);
    data.stats.total_commands += 1;
    data.stats.cmds[idx].calls += 1;
    client.last_cmd = spec.name;
    client.last_active_ms = now;
    if super::monitor::active() && !client.monitor {
        super::monitor::feed(lctx.shards, data, client.db, &client.addr, &args);
    }
    batch.push(BatchItem {
        owner,
        idx,
        spec,
        db: client.db,
        resp3: client.resp3,
        args: OwnedArgs::from_args(&args),
    });
    true
}

/// Replies of one shard's part of a batch: one buffer, and for each command its position
/// in the batch and the end of its reply in the buffer.
#[derive(Default)]
struct GroupReplies {
    buf: Vec<u8>,
    ends: Vec<(usize, usize)>,
}

/// Runs a batch: one message per shard with that shard's commands in order (the shards
/// work concurrently), then the replies are put back in request order. Each shard writes
/// all its replies into one buffer.
async fn run_batch(shards: &Rc<Shards>, batch: Vec<BatchItem>) -> Vec<u8> {
    let mut groups: std::collections::BTreeMap<usize, Vec<(usize, BatchItem)>> =
        std::collections::BTreeMap::new();
    for (i, item) in batch.into_iter().enumerate() {
        groups.entry(item.owner).or_default().push((i, item));
    }
    let futs: Vec<_> = groups
        .into_iter()
        .map(|(owner, items)| {
            let shards = shards.clone();
            async move {
                // Run in order until a command meets a locked key; the rest then goes
                // one by one through the locking path.
                let (mut out, rest) = shards
                    .run_on(owner, move |d: &mut ShardData| {
                        let mut out = GroupReplies {
                            buf: Vec::new(),
                            ends: Vec::with_capacity(items.len()),
                        };
                        let now = now_ms();
                        let mut iter = items.into_iter();
                        let mut rest = Vec::new();
                        // Back to back: each command ends at the clock read that starts
                        // the next one.
                        let mut mark = d.latency_clock();
                        for (i, item) in iter.by_ref() {
                            if keys_locked(item.spec, &item.args.view(), item.db, d) {
                                rest.push((i, item));
                                break;
                            }
                            let Handler::Keyed { run, .. } = item.spec.handler else {
                                unreachable!("batched commands are keyed")
                            };
                            let view = item.args.view();
                            run_keyed_into(run, d, item.db, item.resp3, view, &mut out.buf, now);
                            mark = d.record_until_now(item.idx, mark);
                            out.ends.push((i, out.buf.len()));
                        }
                        rest.extend(iter);
                        (out, rest)
                    })
                    .await;
                for (i, item) in rest {
                    let reply = exec_keyed_remote(
                        &shards, item.spec, item.idx, owner, item.db, item.resp3, item.args,
                    )
                    .await;
                    out.buf.extend_from_slice(&reply);
                    out.ends.push((i, out.buf.len()));
                }
                out
            }
        })
        .collect();
    let groups = crate::shard::futures_join_all(futs).await;
    // Each group's commands are in batch order: merge them by position.
    let total: usize = groups.iter().map(|g| g.buf.len()).sum();
    let mut reply = Vec::with_capacity(total);
    let mut next: Vec<(usize, usize)> = vec![(0, 0); groups.len()]; // (entry, byte start)
    loop {
        let mut best: Option<(usize, usize)> = None; // (group, batch position)
        for (g, group) in groups.iter().enumerate() {
            if let Some(&(pos, _)) = group.ends.get(next[g].0) {
                if best.is_none_or(|(_, p)| pos < p) {
                    best = Some((g, pos));
                }
            }
        }
        let Some((g, _)) = best else { break };
        let (entry, start) = next[g];
        let end = groups[g].ends[entry].1;
        reply.extend_from_slice(&groups[g].buf[start..end]);
        next[g] = (entry + 1, end);
    }
    reply
}

/// Runs one request. Appends the reply to `wbuf` unless the command went async (then
/// `*waiting` is set and the reply arrives through [`Completions`]). `mark` is the
/// clock reading that ended the previous command of the pipeline, if it ran inline and
/// was timed: this command's start (so its time includes its own parsing and dispatch,
/// tens of nanoseconds); on return, the reading that ended this one, if it was timed.
#[allow(clippy::too_many_arguments)]
fn execute(
    args: Args,
    wbuf: &mut Vec<u8>,
    handle: &ClientRef,
    client: &mut super::client::ClientState,
    data: &mut ShardData,
    lctx: &LoopCtx,
    now: u64,
    waiting: &mut bool,
    batch: &mut Vec<BatchItem>,
    mark: &mut Option<u64>,
) {
    // Taken now: a command refused below leaves no mark for the next one.
    let previous_end = mark.take();
    let start_len = wbuf.len();
    let resp3 = client.resp3;
    let name = args.get(0);
    let Some((idx, spec)) = registry().lookup_indexed(name) else {
        // Redis 7.0 checks the command name before authentication.
        let msg = unknown_command_error(&args);
        reject(client, data, wbuf, start_len, false, &msg);
        return;
    };
    // From here on `idx` is where the statistics go (`config|set` for CONFIG SET).
    let idx = registry().stat_index(idx, &args);
    data.stats.total_commands += 1;
    client.last_cmd = spec.name;
    client.last_active_ms = now;
    if !spec.arity_ok(args.len()) {
        data.stats.cmds[idx].rejected += 1;
        reject(
            client,
            data,
            wbuf,
            start_len,
            spec.name == "exec",
            &arity_error(name),
        );
        return;
    }
    if let Some(msg) = registry().subcommand_arity_error(idx, args.len()) {
        data.stats.cmds[idx].rejected += 1;
        reject(client, data, wbuf, start_len, false, &msg);
        return;
    }
    if !client.authenticated && spec.flags & flags::NO_AUTH == 0 {
        data.stats.cmds[idx].rejected += 1;
        // Redis checks a container's subcommand and its arity before authentication.
        let sub = (args.len() > 1).then(|| args.get(1));
        let msg = crate::commands::subcommands::pre_auth_error(spec.name, sub, args.len());
        reject(
            client,
            data,
            wbuf,
            start_len,
            spec.name == "exec",
            msg.as_deref().unwrap_or(b"NOAUTH Authentication required."),
        );
        return;
    }
    if client.subs.active() && !client.resp3 && !allowed_when_subscribed(spec.name) {
        data.stats.cmds[idx].rejected += 1;
        let msg = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        );
        reject(
            client,
            data,
            wbuf,
            start_len,
            spec.name == "exec",
            msg.as_bytes(),
        );
        return;
    }
    if crate::persistence::loading() && spec.flags & flags::LOADING == 0 {
        data.stats.cmds[idx].rejected += 1;
        let m = crate::persistence::LOADING_ERR;
        reject(client, data, wbuf, start_len, spec.name == "exec", m);
        return;
    }
    if spec.flags & flags::ALLOW_BUSY == 0 && crate::scripting::engine::any_slow() {
        data.stats.cmds[idx].rejected += 1;
        let m: &[u8] =
            b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
        reject(client, data, wbuf, start_len, spec.name == "exec", m);
        return;
    }
    if data.mem.limit != 0 && refused_for_memory(spec, client, data) {
        data.stats.cmds[idx].rejected += 1;
        let m = crate::shard::memory::OOM_ERROR;
        reject(client, data, wbuf, start_len, spec.name == "exec", m);
        return;
    }
    if client.multi.is_some() && !runs_inside_multi(spec.name) {
        if spec.flags & flags::NO_MULTI != 0 {
            data.stats.cmds[idx].rejected += 1;
            let m: &[u8] = b"ERR Command not allowed inside a transaction";
            reject(client, data, wbuf, start_len, false, m);
            return;
        }
        if let Some(m) = client.multi.as_mut() {
            m.queued.push(super::client::Queued {
                idx,
                spec,
                args: OwnedArgs::from_args(&args),
            });
        }
        ReplyWriter::new(wbuf, resp3).simple(b"QUEUED");
        apply_reply_mode(client, wbuf, start_len);
        return;
    }
    let db = client.db;
    if super::monitor::active() && !client.monitor && spec.flags & flags::SKIP_MONITOR == 0 {
        super::monitor::feed(lctx.shards, data, db, &client.addr, &args);
    }
    let started = match previous_end {
        Some(t) if data.latency_tracking => Some(t),
        _ => data.latency_clock(),
    };
    let batch_len = batch.len();
    match spec.handler {
        Handler::Conn(f) => {
            let mut ctx = ConnCtx {
                client,
                shards: lctx.shards,
                handle,
                shard: data,
                now_ms: now,
                out: ReplyWriter::new(wbuf, resp3),
                deferred: None,
            };
            f(&mut ctx, args);
            if let Some(fut) = ctx.deferred.take() {
                spawn_future(fut, lctx, waiting);
            }
        }
        Handler::Keyed { run, cross } => {
            let route = key_owner(spec, &args, lctx.shards);
            let owner = route.flatten().unwrap_or(data.id);
            if route.is_none() {
                match cross {
                    Some(f) => {
                        // Counted and timed when it ends (see `Handler::Async` below).
                        let started = started.filter(|_| spec.flags & flags::BLOCKING == 0);
                        spawn_async(f, args, client, lctx, waiting, idx, started);
                        return;
                    }
                    None => {
                        let m: &[u8] = b"CROSSSLOT Keys in request don't hash to the same slot";
                        ReplyWriter::new(wbuf, resp3).error(m);
                        data.count_error(m);
                    }
                }
            } else if owner == data.id && !keys_locked(spec, &args, db, data) {
                if !room_for(spec, &args, db, data) {
                    ReplyWriter::new(wbuf, resp3).error(crate::shard::memory::OOM_ERROR);
                } else {
                    let mut ctx = Ctx {
                        shard: data,
                        db,
                        now_ms: now,
                        out: ReplyWriter::new(wbuf, resp3),
                    };
                    run(&mut ctx, args);
                }
            } else if client.reply_mode == ReplyMode::On {
                // Start a batch: following keyed commands join it (see process_input).
                batch.push(BatchItem {
                    owner,
                    idx,
                    spec,
                    db,
                    resp3,
                    args: OwnedArgs::from_args(&args),
                });
            } else {
                let owned = OwnedArgs::from_args(&args);
                let shards = lctx.shards.clone();
                let fut = Box::pin(async move {
                    exec_keyed_remote(&shards, spec, idx, owner, db, resp3, owned).await
                });
                spawn_future(fut, lctx, waiting);
            }
        }
        Handler::Async(f) => {
            // Counted (and timed, unless it blocks) when it ends, as Redis counts a
            // command after running it: INFO does not see itself, CONFIG RESETSTAT
            // counts itself after the reset.
            let started = started.filter(|_| spec.flags & flags::BLOCKING == 0);
            spawn_async(f, args, client, lctx, waiting, idx, started);
            return;
        }
    }
    // A keyed command run by another shard is timed there.
    if !*waiting && batch.len() == batch_len {
        *mark = data.record_until_now(idx, started);
    }
    if *waiting {
        data.stats.cmds[idx].calls += 1;
    } else {
        data.count_call(idx, &wbuf[start_len..]);
    }
    if !*waiting {
        apply_reply_mode(client, wbuf, start_len);
    }
}

/// Answers a refused command with `msg` and counts the error. Inside MULTI the
/// transaction is doomed (EXEC answers `-EXECABORT`); a refused EXEC itself answers
/// `-EXECABORT Transaction discarded because of: <msg>` as Redis 7.0 does.
fn reject(
    client: &mut super::client::ClientState,
    data: &mut ShardData,
    wbuf: &mut Vec<u8>,
    start_len: usize,
    is_exec: bool,
    msg: &[u8],
) {
    let resp3 = client.resp3;
    // Redis answers any refused EXEC with EXECABORT, inside MULTI or not.
    if is_exec {
        client.multi = None;
        let shown = msg.strip_prefix(b"ERR ").unwrap_or(msg);
        let mut m = b"EXECABORT Transaction discarded because of: ".to_vec();
        m.extend_from_slice(shown);
        ReplyWriter::new(wbuf, resp3).error(&m);
        data.count_error(&m);
    } else {
        if let Some(m) = client.multi.as_mut() {
            m.aborted = true;
        }
        ReplyWriter::new(wbuf, resp3).error(msg);
        data.count_error(msg);
    }
    apply_reply_mode(client, wbuf, start_len);
}

/// Store mode over `maxmemory` (Redis's `processCommand` rule): refuses commands that
/// may grow memory, every command queued inside MULTI (queueing grows memory too), and
/// an EXEC whose transaction holds such a command. Only called with a limit set.
#[cold]
fn refused_for_memory(
    spec: &CommandSpec,
    client: &super::client::ClientState,
    data: &mut ShardData,
) -> bool {
    let denyoom = spec.flags & flags::DENYOOM != 0;
    let queueing = client.multi.is_some() && !runs_inside_multi(spec.name);
    let exec_denyoom = spec.name == "exec"
        && client
            .multi
            .as_ref()
            .is_some_and(|m| m.queued.iter().any(|q| q.spec.flags & flags::DENYOOM != 0));
    (denyoom || queueing || exec_denyoom) && data.oom()
}

/// Cache mode: before a command that may grow memory runs on the shard owning its keys,
/// evicts other keys until the shard's usage plus the command's arguments fits its
/// budget. False when the command must be refused with -OOM (nothing left to evict).
/// One branch without a limit.
#[inline]
pub fn room_for(spec: &CommandSpec, args: &Args, db: usize, data: &mut ShardData) -> bool {
    if data.mem.limit == 0 || spec.flags & flags::DENYOOM == 0 || data.mem.policy.is_none() {
        return true;
    }
    room_for_slow(spec, args, db, data)
}

fn room_for_slow(spec: &CommandSpec, args: &Args, db: usize, data: &mut ShardData) -> bool {
    let incoming: usize = args.iter().map(|a| a.len()).sum();
    let own_key = |d: usize, k: &[u8]| {
        if d != db {
            return false;
        }
        let mut hit = false;
        spec.for_each_key_pos(args.len(), |i| args.get(i), |i| hit |= args.get(i) == k);
        hit
    };
    data.make_room(db, incoming, &own_key)
}

/// Commands a RESP2 client in subscribed mode may still send.
fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// Commands that run at once even inside MULTI (the rest is queued).
fn runs_inside_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// The shard owning every key of a request: `Some(Some(shard))`, `Some(None)` when the
/// request has no keys, `None` when its keys span shards.
fn key_owner(spec: &CommandSpec, args: &Args, shards: &Shards) -> Option<Option<usize>> {
    if shards.n <= 1 {
        return Some(Some(0));
    }
    let mut owner: Option<usize> = None;
    let mut spread = false;
    spec.for_each_key_pos(
        args.len(),
        |i| args.get(i),
        |i| {
            let s = shards.owner(args.get(i));
            match owner {
                None => owner = Some(s),
                Some(o) if o != s => spread = true,
                _ => {}
            }
        },
    );
    if spread {
        None
    } else {
        Some(owner)
    }
}

/// Applies CLIENT REPLY OFF/SKIP to the reply just written (from `start`).
pub fn apply_reply_mode(client: &mut super::client::ClientState, wbuf: &mut Vec<u8>, start: usize) {
    match client.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => wbuf.truncate(start),
        ReplyMode::Skip => client.reply_mode = ReplyMode::SkipNext,
        ReplyMode::SkipNext => {
            wbuf.truncate(start);
            client.reply_mode = ReplyMode::On;
        }
    }
}

fn keys_locked(spec: &CommandSpec, args: &Args, db: usize, data: &ShardData) -> bool {
    if data.locks.is_empty() {
        return false;
    }
    let mut locked = false;
    spec.for_each_key_pos(
        args.len(),
        |i| args.get(i),
        |i| {
            if data.locks.is_locked(db, args.get(i)) {
                locked = true;
            }
        },
    );
    locked
}

/// Runs a keyed command (registry index `idx`) on shard `owner`, honouring key locks
/// held there. The owner times it.
pub async fn exec_keyed_remote(
    shards: &Rc<Shards>,
    spec: &'static CommandSpec,
    idx: usize,
    owner: usize,
    db: usize,
    resp3: bool,
    args: OwnedArgs,
) -> Vec<u8> {
    let Handler::Keyed { run, .. } = spec.handler else {
        unreachable!("keyed command")
    };
    // Fast attempt: run if none of its keys is locked.
    let args = Rc::new(args);
    let attempt = (*args).clone();
    let first = shards
        .run_on(owner, move |d: &mut ShardData| {
            if keys_locked(spec, &attempt.view(), db, d) {
                return None;
            }
            Some(d.timed(idx, |d| run_keyed(run, d, db, resp3, attempt.view())))
        })
        .await;
    if let Some(reply) = first {
        return reply;
    }
    // Wait for the locks like any other locker, run, release.
    let mut keys: Vec<&[u8]> = Vec::new();
    let view = args.view();
    spec.for_each_key_pos(view.len(), |i| view.get(i), |i| keys.push(view.get(i)));
    let groups = shards.group_keys(db, keys);
    shards.lock(&groups).await;
    let attempt = (*args).clone();
    let reply = shards
        .run_on(owner, move |d: &mut ShardData| {
            d.timed(idx, |d| run_keyed(run, d, db, resp3, attempt.view()))
        })
        .await;
    shards.unlock(&groups).await;
    reply
}

/// Runs a keyed handler against `d` and returns the encoded reply.
pub fn run_keyed(
    run: crate::commands::KeyedFn,
    d: &mut ShardData,
    db: usize,
    resp3: bool,
    args: Args,
) -> Vec<u8> {
    let mut buf = Vec::new();
    run_keyed_into(run, d, db, resp3, args, &mut buf, now_ms());
    buf
}

/// Runs a keyed handler against `d`, appending its reply to `buf`.
fn run_keyed_into(
    run: crate::commands::KeyedFn,
    d: &mut ShardData,
    db: usize,
    resp3: bool,
    args: Args,
    buf: &mut Vec<u8>,
    now: u64,
) {
    if d.mem.limit != 0 {
        if let Some(spec) = registry().lookup(args.get(0)) {
            if !room_for(spec, &args, db, d) {
                ReplyWriter::new(buf, resp3).error(crate::shard::memory::OOM_ERROR);
                return;
            }
        }
    }
    let mut ctx = Ctx {
        shard: d,
        db,
        now_ms: now,
        out: ReplyWriter::new(buf, resp3),
    };
    run(&mut ctx, args);
}

/// Starts an async command. `timed` (registry index, start) records its latency on this
/// shard when it ends.
fn spawn_async(
    f: crate::commands::AsyncFn,
    args: Args,
    client: &super::client::ClientState,
    lctx: &LoopCtx,
    waiting: &mut bool,
    idx: usize,
    started: Option<u64>,
) {
    let actx = AsyncCtx {
        shards: lctx.shards.clone(),
        client: client.clone(),
    };
    let fut = f(actx, OwnedArgs::from_args(&args));
    let shards = lctx.shards.clone();
    let fut = Box::pin(async move {
        let reply = fut.await;
        if let Ok(mut d) = shards.data.try_borrow_mut() {
            d.record_since(idx, started);
            d.count_call(idx, &reply);
        }
        reply
    });
    spawn_future(fut, lctx, waiting);
}

fn spawn_future(fut: crate::commands::ReplyFuture, lctx: &LoopCtx, waiting: &mut bool) {
    *waiting = true;
    lctx.completions.spawned.set(true);
    let completions = lctx.completions.clone();
    let slot = lctx.slot;
    let gen = lctx.gen;
    glommio::spawn_local(async move {
        // glommio polls a new task right away, inside this call, while the loop still
        // holds the shard's data: step aside once so the task starts after the batch.
        futures_lite::future::yield_now().await;
        let reply = fut.await;
        completions.complete(slot, gen, reply);
    })
    .detach();
}
