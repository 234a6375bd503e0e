//! MULTI/EXEC and WATCH: atomic transactions across shards.
//!
//! **Planning.** EXEC first collects every key its queued commands name (in the database
//! each command will run in, following queued SELECTs) plus the client's watched keys,
//! grouped by owning shard. Commands that reach the whole keyspace (FLUSHALL, KEYS,
//! DBSIZE, SWAPDB, MOVE, COPY ... DB: every `Async` handler) make the transaction
//! *global*.
//!
//! **One shard, the common case.** When every key lives on one shard and nothing is
//! global, the whole transaction runs in one closure on that shard: inline, with no
//! message and no lock, when it is the connection's own shard; as one message otherwise.
//! A shard runs one closure at a time, so nobody sees a partial transaction. If one of
//! the keys is held by a cross-shard command, the transaction takes the general path.
//!
//! **General path.** The transaction locks its keys on every shard involved (a global
//! one locks every shard whole), in ascending shard order through the same FIFO key locks
//! as the atomic multi-key commands ([`crate::shard::locks`]), so there is no deadlock and
//! no starvation. It checks the WATCHes, runs its commands one by one (each on its
//! owner shard, cross-shard ones through their coordinators, which see `in_exec` and do
//! not lock again), and unlocks. Other clients' commands on those keys wait for the
//! locks, so none observes a partial transaction.
//!
//! **WATCH.** A watched key is registered on its owner shard ([`crate::shard::watch`]);
//! every write calls `ShardData::modified`, which marks its watchers dirty; expiry and
//! FLUSHDB/FLUSHALL/SWAPDB count as changes. EXEC checks and clears the registrations
//! under the same locks as the commands, so a change can't slip in between.

use super::client::{ClientState, Queued};
use crate::commands::{flags, AsyncCtx, ConnCtx, Ctx, Handler};
use crate::protocol::parse::Args;
use crate::protocol::reply::ReplyWriter;
use crate::shard::locks::{whole_shard, LockKey};
use crate::shard::{now_ms, ShardData, Shards};
use std::collections::BTreeMap;
use std::rc::Rc;

/// WATCH `args[1..]`: registers each key on its owner shard (inline for local keys, a
/// message for the others) and remembers it in the client.
pub fn watch(ctx: &mut ConnCtx, args: &Args) {
    let db = ctx.client.db;
    let id = ctx.client.id;
    let now = now_ms();
    let mut remote: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
    for i in 1..args.len() {
        let key = args.get(i);
        if ctx.client.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        ctx.client.watched.push((db, key.to_vec()));
        let owner = ctx.shards.owner(key);
        if owner == ctx.shard.id {
            register(ctx.shard, db, key, id, now);
        } else {
            remote.entry(owner).or_default().push(key.to_vec());
        }
    }
    if remote.is_empty() {
        ctx.out.ok();
        return;
    }
    let shards = ctx.shards.clone();
    let resp3 = ctx.client.resp3;
    ctx.deferred = Some(Box::pin(async move {
        for (shard, keys) in remote {
            shards
                .run_on(shard, move |d| {
                    let now = now_ms();
                    for k in keys {
                        register(d, db, &k, id, now);
                    }
                })
                .await;
        }
        let mut buf = Vec::new();
        ReplyWriter::new(&mut buf, resp3).ok();
        buf
    }));
}

/// Registers one watch on the owner shard. A key whose TTL already passed is deleted
/// first, so that only later changes count.
fn register(d: &mut ShardData, db: usize, key: &[u8], id: u64, now: u64) {
    d.dbs[db].peek(key, now);
    d.drain_expired();
    d.watches.watch(db, key, id);
    d.sync_expiry_tracking();
}

/// Drops every WATCH of `client` (UNWATCH, DISCARD, EXEC, RESET, disconnect).
pub fn unwatch_all(client: &mut ClientState, data: &mut ShardData, shards: &Rc<Shards>) {
    if client.watched.is_empty() {
        return;
    }
    let id = client.id;
    let mut owners: Vec<usize> = client
        .watched
        .drain(..)
        .map(|(_, k)| shards.owner(&k))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    for shard in owners {
        if shard == data.id {
            data.watches.unwatch(id);
            data.sync_expiry_tracking();
        } else {
            let shards = shards.clone();
            glommio::spawn_local(async move {
                shards
                    .run_on(shard, move |d| {
                        d.watches.unwatch(id);
                        d.sync_expiry_tracking();
                    })
                    .await;
            })
            .detach();
        }
    }
}

/// Checks (and ends) `id`'s watches on shard `d`: true when a watched key changed.
/// Keys whose TTL passed are expired first, so they count as changed.
fn watches_dirty(d: &mut ShardData, id: u64, keys: &[(usize, Vec<u8>)]) -> bool {
    let now = now_ms();
    for (db, k) in keys {
        d.dbs[*db].peek(k, now);
    }
    d.drain_expired();
    let dirty = d.watches.unwatch(id);
    d.sync_expiry_tracking();
    dirty
}

/// What EXEC found out about its queue.
struct Plan {
    /// Keys by owner shard (commands' keys and watched keys).
    groups: BTreeMap<usize, Vec<LockKey>>,
    /// Watched keys by owner shard.
    watched: BTreeMap<usize, Vec<(usize, Vec<u8>)>>,
    /// Reaches the whole keyspace: lock every shard whole.
    global: bool,
    /// Has connection-level commands (they run on the home shard with the client).
    has_conn: bool,
}

fn plan(client: &ClientState, queued: &[Queued], shards: &Shards, dbnum: usize) -> Plan {
    let mut p = Plan {
        groups: BTreeMap::new(),
        watched: BTreeMap::new(),
        global: false,
        has_conn: false,
    };
    let mut db = client.db;
    for q in queued {
        let args = q.args.view();
        match q.spec.handler {
            Handler::Keyed { .. } => {
                // MOVE and COPY ... DB reach another database: lock whole shards.
                if q.spec.name == "move" || q.spec.name == "copy" {
                    p.global = true;
                }
                q.spec.for_each_key_pos(
                    args.len(),
                    |i| args.get(i),
                    |i| {
                        let k = args.get(i);
                        p.groups
                            .entry(shards.owner(k))
                            .or_default()
                            .push((db, k.to_vec()));
                    },
                );
            }
            Handler::Conn(_) => {
                p.has_conn = true;
                // Scripts (keys through numkeys) and PUBLISH (every shard) may need
                // other shards: treat them as global.
                if q.spec.name.starts_with("eval") || q.spec.name.ends_with("publish") {
                    p.global = true;
                }
                if q.spec.name == "select" && args.len() == 2 {
                    if let Some(n) = crate::commands::parse_int(args.get(1)) {
                        if n >= 0 && (n as usize) < dbnum {
                            db = n as usize;
                        }
                    }
                }
            }
            Handler::Async(_) => p.global = true,
        }
    }
    for (wdb, k) in &client.watched {
        let owner = shards.owner(k);
        p.groups.entry(owner).or_default().push((*wdb, k.clone()));
        p.watched.entry(owner).or_default().push((*wdb, k.clone()));
    }
    for keys in p.groups.values_mut() {
        keys.sort();
        keys.dedup();
    }
    p
}

/// EXEC of `queued` (not aborted): replies inline when the transaction runs on the
/// connection's shard, otherwise sets `ctx.deferred`.
pub fn exec(ctx: &mut ConnCtx, queued: Vec<Queued>) {
    let p = plan(ctx.client, &queued, ctx.shards, ctx.shard.dbs.len());
    let id = ctx.client.id;
    let home = ctx.shard.id;
    for q in &queued {
        ctx.shard.stats.total_commands += 1;
        ctx.shard.stats.cmds[q.idx].calls += 1;
    }
    let single = !p.global && p.groups.len() <= 1;
    let target = p.groups.keys().next().copied().unwrap_or(home);
    if single && target == home && !locked(ctx.shard, &p.groups) {
        // Everything here: run inline.
        let watched = p.watched.get(&home).cloned().unwrap_or_default();
        ctx.client.watched.clear();
        if !watched.is_empty() && watches_dirty(ctx.shard, id, &watched) {
            ctx.out.null_array();
            return;
        }
        ctx.client.in_exec = true;
        make_room_for(ctx.shard, ctx.client.db, &queued);
        ctx.out.array(queued.len());
        for q in &queued {
            run_local(ctx, q);
        }
        ctx.client.in_exec = false;
        return;
    }
    let shards = ctx.shards.clone();
    let handle = ctx.handle.clone();
    // The watches are checked by the transaction itself from here on.
    ctx.client.watched.clear();
    if single && !p.has_conn {
        // One remote shard, keyed commands only: one message, unless a key is locked.
        let resp3 = ctx.client.resp3;
        let db = ctx.client.db;
        ctx.deferred = Some(Box::pin(async move {
            let groups = p.groups.clone();
            let watched = p.watched.get(&target).cloned().unwrap_or_default();
            let items: Vec<Queued> = queued.clone();
            let done = shards
                .run_on(target, move |d| {
                    if locked(d, &groups) {
                        return None;
                    }
                    Some(run_on_shard(d, id, &watched, &items, db, resp3))
                })
                .await;
            match done {
                Some(reply) => reply,
                None => exec_general(shards, handle, p, queued).await,
            }
        }));
        return;
    }
    ctx.deferred = Some(Box::pin(exec_general(shards, handle, p, queued)));
}

/// True when one of the keys is locked on `d` (by a cross-shard command or transaction).
fn locked(d: &ShardData, groups: &BTreeMap<usize, Vec<LockKey>>) -> bool {
    if d.locks.is_empty() {
        return false;
    }
    groups
        .get(&d.id)
        .is_some_and(|keys| keys.iter().any(|(db, k)| d.locks.is_locked(*db, k)))
}

/// Cache mode, before a single-shard transaction runs without locks: evicts other keys
/// until the shard fits the transaction's arguments, never one of the transaction's own
/// keys (nothing is evicted between its commands). If nothing can be evicted the
/// transaction still runs: EXEC already passed the dispatcher's memory check.
fn make_room_for(d: &mut ShardData, db: usize, queued: &[Queued]) {
    if d.mem.limit == 0 || d.mem.policy.is_none() {
        return;
    }
    if !queued.iter().any(|q| q.spec.flags & flags::DENYOOM != 0) {
        return;
    }
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut incoming = 0;
    for q in queued {
        let v = q.args.view();
        incoming += v.iter().map(|a| a.len()).sum::<usize>();
        q.spec
            .for_each_key_pos(v.len(), |i| v.get(i), |i| keys.push(v.get(i)));
    }
    let protect = |d: usize, k: &[u8]| d == db && keys.contains(&k);
    d.make_room(db, incoming, &protect);
}

/// Runs one queued command inline on the home shard (single-shard transactions).
fn run_local(ctx: &mut ConnCtx, q: &Queued) {
    let args = q.args.view();
    match q.spec.handler {
        Handler::Keyed { run, .. } => {
            let resp3 = ctx.client.resp3;
            let mut kctx = Ctx {
                shard: ctx.shard,
                db: ctx.client.db,
                now_ms: now_ms(),
                out: ReplyWriter::new(ctx.out.buf_mut(), resp3),
            };
            run(&mut kctx, args);
        }
        Handler::Conn(f) => {
            let resp3 = ctx.client.resp3;
            let mut cctx = ConnCtx {
                client: ctx.client,
                shards: ctx.shards,
                handle: ctx.handle,
                shard: ctx.shard,
                now_ms: now_ms(),
                out: ReplyWriter::new(ctx.out.buf_mut(), resp3),
                deferred: None,
            };
            f(&mut cctx, args);
            debug_assert!(
                cctx.deferred.is_none(),
                "{} deferred inside EXEC",
                q.spec.name
            );
        }
        Handler::Async(_) => unreachable!("global transactions take the general path"),
    }
}

/// Runs a keyed-only transaction on its one (remote) shard: watch check, then every
/// command in order.
fn run_on_shard(
    d: &mut ShardData,
    id: u64,
    watched: &[(usize, Vec<u8>)],
    items: &[Queued],
    db: usize,
    resp3: bool,
) -> Vec<u8> {
    let mut buf = Vec::new();
    if !watched.is_empty() && watches_dirty(d, id, watched) {
        ReplyWriter::new(&mut buf, resp3).null_array();
        return buf;
    }
    make_room_for(d, db, items);
    ReplyWriter::new(&mut buf, resp3).array(items.len());
    for q in items {
        let Handler::Keyed { run, .. } = q.spec.handler else {
            unreachable!("keyed-only transaction")
        };
        let mut kctx = Ctx {
            shard: d,
            db,
            now_ms: now_ms(),
            out: ReplyWriter::new(&mut buf, resp3),
        };
        run(&mut kctx, q.args.view());
    }
    buf
}

/// The general path: lock, check watches, run command by command, unlock.
async fn exec_general(
    shards: Rc<Shards>,
    handle: super::client::ClientRef,
    p: Plan,
    queued: Vec<Queued>,
) -> Vec<u8> {
    let groups: BTreeMap<usize, Vec<LockKey>> = if p.global {
        (0..shards.n).map(|s| (s, vec![whole_shard()])).collect()
    } else {
        p.groups.clone()
    };
    shards.lock(&groups).await;
    let id = handle.borrow().id;
    let mut dirty = false;
    for (shard, keys) in p.watched {
        dirty |= shards
            .run_on(shard, move |d| watches_dirty(d, id, &keys))
            .await;
    }
    let mut buf = Vec::new();
    if dirty {
        let resp3 = handle.borrow().resp3;
        ReplyWriter::new(&mut buf, resp3).null_array();
        shards.unlock(&groups).await;
        return buf;
    }
    ReplyWriter::new(&mut buf, handle.borrow().resp3).array(queued.len());
    handle.borrow_mut().in_exec = true;
    for q in queued {
        let (db, resp3) = {
            let c = handle.borrow();
            (c.db, c.resp3)
        };
        match q.spec.handler {
            Handler::Keyed { run, cross } => {
                let view = q.args.view();
                let mut owner: Option<usize> = None;
                let mut spread = false;
                q.spec.for_each_key_pos(
                    view.len(),
                    |i| view.get(i),
                    |i| {
                        let s = shards.owner(view.get(i));
                        match owner {
                            None => owner = Some(s),
                            Some(o) if o != s => spread = true,
                            _ => {}
                        }
                    },
                );
                if !spread {
                    let args = q.args;
                    let reply = shards
                        .run_on(owner.unwrap_or(shards.id), move |d| {
                            super::conn::run_keyed(run, d, db, resp3, args.view())
                        })
                        .await;
                    buf.extend_from_slice(&reply);
                } else if let Some(f) = cross {
                    let actx = AsyncCtx {
                        shards: shards.clone(),
                        client: handle.borrow().clone(),
                    };
                    buf.extend_from_slice(&f(actx, q.args).await);
                } else {
                    ReplyWriter::new(&mut buf, resp3)
                        .error(b"CROSSSLOT Keys in request don't hash to the same slot");
                }
            }
            Handler::Conn(f) => {
                let deferred = {
                    let mut client = handle.borrow_mut();
                    let mut data = shards.data.borrow_mut();
                    let mut cctx = ConnCtx {
                        client: &mut client,
                        shards: &shards,
                        handle: &handle,
                        shard: &mut data,
                        now_ms: now_ms(),
                        out: ReplyWriter::new(&mut buf, resp3),
                        deferred: None,
                    };
                    f(&mut cctx, q.args.view());
                    cctx.deferred.take()
                };
                if let Some(fut) = deferred {
                    buf.extend_from_slice(&fut.await);
                }
            }
            Handler::Async(f) => {
                let actx = AsyncCtx {
                    shards: shards.clone(),
                    client: handle.borrow().clone(),
                };
                buf.extend_from_slice(&f(actx, q.args).await);
            }
        }
    }
    handle.borrow_mut().in_exec = false;
    shards.unlock(&groups).await;
    buf
}
