//! The command registry and the contexts command handlers run in.
//!
//! Every command is described once by a [`CommandSpec`]: its name, Redis arity, flags and
//! key positions, and a [`Handler`]. The dispatcher (`server::dispatch`), `COMMAND`, and
//! the transaction code all read this one table.
//!
//! Handlers come in three kinds:
//! - [`Handler::Keyed`]: data commands. When all keys hash to one shard the `run` function
//!   executes on that shard (inline on the connection's home shard, or sent there as a
//!   message). When keys span shards, the `cross` coordinator runs instead.
//! - [`Handler::Conn`]: connection and server commands that touch only the connection and
//!   the home shard (PING, SELECT, HELLO, CLIENT ...).
//! - [`Handler::Async`]: commands that need every shard (DBSIZE, KEYS, SCAN, FLUSHALL,
//!   CONFIG SET, INFO...), run as a task on the home shard.
//!
//! One file per command family: [`strings`], [`bitmaps`], [`hyperloglog`], [`hashes`],
//! [`lists`], [`sets`], [`zsets`], [`streams`], [`keys`], [`server`], [`transactions`],
//! [`pubsub`], [`scripting`], [`dump`] (DUMP and RESTORE), [`sort`], [`persistence`]
//! (SAVE, BGSAVE, LASTSAVE), [`memory`].

pub mod acl;
pub mod bitmaps;
pub mod dump;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod memory;
pub mod persistence;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod subcommands;
pub mod transactions;
pub mod zsets;

use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::ReplyWriter;
use crate::server::client::ClientState;
use crate::shard::locks::LockKey;
use crate::shard::{ShardData, Shards};
use crate::storage::Db;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// `WRONGTYPE` error text.
pub const WRONGTYPE: &[u8] = b"WRONGTYPE Operation against a key holding the wrong kind of value";
/// Generic syntax error text.
pub const SYNTAX_ERR: &[u8] = b"ERR syntax error";
/// Error for arguments that must be integers.
pub const NOT_INT: &[u8] = b"ERR value is not an integer or out of range";
/// Error for arguments that must be floats.
pub const NOT_FLOAT: &[u8] = b"ERR value is not a valid float";
/// Error for INCR-family overflows.
pub const OVERFLOW: &[u8] = b"ERR increment or decrement would overflow";

/// Command flags (a bit set), named as in Redis's COMMAND INFO.
pub mod flags {
    /// May modify the keyspace.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory (refused with -OOM over maxmemory in store mode).
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/sub related.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed from scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// Allowed while loading a snapshot.
    pub const LOADING: u32 = 1 << 6;
    /// Allowed on stale replicas.
    pub const STALE: u32 = 1 << 7;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 8;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 9;
    /// Not allowed inside MULTI (queued commands are refused).
    pub const NO_MULTI: u32 = 1 << 10;
    /// Command may be rejected by Redis when in subscribed RESP2 mode... (allowed in subscribe context).
    pub const SUBSCRIBE_OK: u32 = 1 << 11;
    /// Non-deterministic output.
    pub const RANDOM: u32 = 1 << 12;
    /// Skip slowlog/monitor.
    pub const SKIP_MONITOR: u32 = 1 << 13;
    /// Allowed while the server is busy with a script.
    pub const ALLOW_BUSY: u32 = 1 << 14;
    /// May block the client (BLPOP...).
    pub const BLOCKING: u32 = 1 << 15;
    /// Keys found through an argument (LMPOP's numkeys); shown last by COMMAND INFO.
    pub const MOVABLEKEYS: u32 = 1 << 16;
    /// Names in Redis's order, for COMMAND INFO.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// Context of a keyed command running on the shard that owns its keys.
pub struct Ctx<'a> {
    /// The shard's data.
    pub shard: &'a mut ShardData,
    /// The selected database.
    pub db: usize,
    /// The time of this batch, Unix milliseconds.
    pub now_ms: u64,
    /// Where the reply goes.
    pub out: ReplyWriter<'a>,
}

impl Ctx<'_> {
    /// The selected database.
    #[inline]
    pub fn db(&mut self) -> &mut Db {
        &mut self.shard.dbs[self.db]
    }

    /// Every write that changes `key` calls this once per change: Redis's
    /// `signalModifiedKey` (dirties WATCHes) and `notifyKeyspaceEvent(class, event, key)`
    /// (`class` is Redis's event class character: `g` generic, `$` string, `l` list,
    /// `s` set, `h` hash, `z` zset, `t` stream, `x` expired, `e` evicted, `n` new key).
    #[inline]
    pub fn modified(&mut self, key: &[u8], class: u8, event: &'static str) {
        self.shard.modified(self.db, key, class, event);
    }
}

/// Context of a connection-level command, on the connection's home shard.
pub struct ConnCtx<'a> {
    /// The client's state (selected db, protocol, name...).
    pub client: &'a mut ClientState,
    /// The shard set (for commands that must reach other shards, such as WATCH or EXEC).
    pub shards: &'a Rc<Shards>,
    /// The shared handle on the client's state, for work that outlives this call.
    pub handle: &'a crate::server::client::ClientRef,
    /// Set by a handler whose reply needs other shards: the connection waits for this
    /// future's reply instead of reading `out` (which the handler then leaves empty).
    pub deferred: Option<ReplyFuture>,
    /// The home shard's data.
    pub shard: &'a mut ShardData,
    /// The time of this batch, Unix milliseconds.
    pub now_ms: u64,
    /// Where the reply goes.
    pub out: ReplyWriter<'a>,
}

/// Context of an async (multi-shard) command, running as a task on the home shard.
#[derive(Clone)]
pub struct AsyncCtx {
    /// Access to every shard.
    pub shards: Rc<Shards>,
    /// A snapshot of the client's state when the command started.
    pub client: ClientState,
}

impl AsyncCtx {
    /// A reply writer over `buf` in the client's protocol.
    pub fn writer<'a>(&self, buf: &'a mut Vec<u8>) -> ReplyWriter<'a> {
        ReplyWriter::new(buf, self.client.resp3)
    }

    /// Locks `groups` for a cross-shard command (see [`Shards::lock`]). Inside EXEC or a
    /// script the transaction already holds every key it touches, so this does nothing.
    pub async fn lock(&self, groups: &std::collections::BTreeMap<usize, Vec<LockKey>>) {
        if !self.client.in_exec {
            self.shards.lock(groups).await;
        }
    }

    /// Releases what [`AsyncCtx::lock`] took.
    pub async fn unlock(&self, groups: &std::collections::BTreeMap<usize, Vec<LockKey>>) {
        if !self.client.in_exec {
            self.shards.unlock(groups).await;
        }
    }
}

/// A boxed future returned by async handlers; resolves to the encoded reply.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Vec<u8>>>>;
/// A custom key finder: (argument count, argument getter, callback per key position).
pub type KeysFn = for<'a> fn(usize, &dyn Fn(usize) -> &'a [u8], &mut dyn FnMut(usize));
/// A keyed handler.
pub type KeyedFn = fn(&mut Ctx, Args);
/// A connection handler.
pub type ConnFn = fn(&mut ConnCtx, Args);
/// An async handler (gets an owned copy of the arguments).
pub type AsyncFn = fn(AsyncCtx, OwnedArgs) -> ReplyFuture;

/// How a command executes.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Runs on the shard owning its keys; `cross` coordinates when keys span shards.
    Keyed {
        /// Single-shard execution.
        run: KeyedFn,
        /// Cross-shard coordinator; `None` = all keys must be on one shard.
        cross: Option<AsyncFn>,
    },
    /// Connection/server command on the home shard.
    Conn(ConnFn),
    /// Multi-shard command run as a task.
    Async(AsyncFn),
}

/// Static description of one command.
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: positive = exact argument count (name included), negative = minimum.
    pub arity: i32,
    /// Bit set of [`flags`].
    pub flags: u32,
    /// First key position (0 = no keys).
    pub first_key: i32,
    /// Last key position (negative counts from the end).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// Position of a `numkeys` argument (0 = none): when set, the `numkeys` arguments
    /// after it are keys too, in addition to the `first_key..last_key` range (Redis's
    /// "keynum" key spec, e.g. ZUNION, ZUNIONSTORE's sources, ZMPOP). Set with
    /// [`CommandSpec::with_numkeys`].
    pub numkeys: i32,
    /// A custom key finder (Redis's `getkeys_proc`, e.g. SORT's STORE destination): given
    /// the argument count and an argument getter, calls the callback with each key
    /// position. When set, it replaces the range and `numkeys` rules. Set with
    /// [`CommandSpec::with_keys_fn`].
    pub keys_fn: Option<KeysFn>,
    /// ACL categories as Redis lists them (for COMMAND INFO), e.g. "@string @fast".
    pub acl: &'static str,
    /// Execution.
    pub handler: Handler,
}

impl std::fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSpec")
            .field("name", &self.name)
            .finish()
    }
}

impl CommandSpec {
    /// Describes a command; `keys` is Redis's (first key, last key, step), (0, 0, 0) for
    /// none.
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: (i32, i32, i32),
        acl: &'static str,
        handler: Handler,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            first_key: keys.0,
            last_key: keys.1,
            step: keys.2,
            numkeys: 0,
            keys_fn: None,
            acl,
            handler,
        }
    }

    /// The same command whose argument at `pos` counts the keys that follow it.
    pub const fn with_numkeys(mut self, pos: i32) -> CommandSpec {
        self.numkeys = pos;
        self
    }

    /// The same command whose keys `f` finds.
    pub const fn with_keys_fn(mut self, f: KeysFn) -> CommandSpec {
        self.keys_fn = Some(f);
        self
    }

    /// For a command with a `numkeys` argument (`arg(i)` gives argument `i` of a request
    /// with `argc` arguments): the count it announces when it is an integer from 1 to
    /// the number of arguments after it. `None` when invalid or when the command has no
    /// such argument (the handler then replies with the error).
    pub fn numkeys_count<'a>(&self, argc: usize, arg: impl Fn(usize) -> &'a [u8]) -> Option<usize> {
        let pos = usize::try_from(self.numkeys)
            .ok()
            .filter(|&p| p > 0 && p < argc)?;
        let n = parse_int(arg(pos))?;
        let n = usize::try_from(n).ok().filter(|&n| n >= 1)?;
        (n < argc - pos).then_some(n)
    }

    /// True when `argc` (name included) satisfies the arity.
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_fits(self.arity, argc)
    }

    /// Calls `f` with each key position of a request with `argc` arguments (`arg(i)`
    /// gives argument `i`; only read for a `numkeys` argument).
    #[inline]
    pub fn for_each_key_pos<'a>(
        &self,
        argc: usize,
        arg: impl Fn(usize) -> &'a [u8],
        mut f: impl FnMut(usize),
    ) {
        if let Some(kf) = self.keys_fn {
            return kf(argc, &arg, &mut f);
        }
        if self.numkeys > 0 {
            if let Some(n) = self.numkeys_count(argc, arg) {
                let first = self.numkeys as usize + 1;
                self.for_each_fixed_key_pos(argc, &mut f);
                (first..first + n).for_each(f);
                return;
            }
        }
        self.for_each_fixed_key_pos(argc, f);
    }

    /// The `first_key..=last_key` (by `step`) positions.
    #[inline]
    fn for_each_fixed_key_pos(&self, argc: usize, mut f: impl FnMut(usize)) {
        if self.first_key <= 0 {
            return;
        }
        let last = if self.last_key < 0 {
            argc as i32 + self.last_key
        } else {
            self.last_key.min(argc as i32 - 1)
        };
        let mut i = self.first_key;
        while i <= last {
            f(i as usize);
            i += self.step.max(1);
        }
    }
}

/// Every command, from every family.
pub fn all_commands() -> Vec<&'static CommandSpec> {
    let mut v: Vec<&'static CommandSpec> = Vec::new();
    v.extend(strings::COMMANDS.iter());
    v.extend(hashes::COMMANDS.iter());
    v.extend(lists::COMMANDS.iter());
    v.extend(sets::COMMANDS.iter());
    v.extend(zsets::COMMANDS.iter());
    v.extend(bitmaps::COMMANDS.iter());
    v.extend(hyperloglog::COMMANDS.iter());
    v.extend(streams::COMMANDS.iter());
    v.extend(keys::COMMANDS.iter());
    v.extend(server::COMMANDS.iter());
    v.extend(persistence::COMMANDS.iter());
    v.extend(transactions::COMMANDS.iter());
    v.extend(pubsub::COMMANDS.iter());
    v.extend(scripting::COMMANDS.iter());
    v.extend(dump::COMMANDS.iter());
    v.extend(sort::COMMANDS.iter());
    v.extend(acl::COMMANDS.iter());
    v.extend(memory::COMMANDS.iter());
    v
}

/// The registry: a lookup table from lower-case command name to spec.
pub struct Registry {
    map: hashbrown::HashMap<
        &'static [u8],
        (usize, &'static CommandSpec),
        foldhash::fast::FixedState,
    >,
    /// All specs, in registration order.
    pub list: Vec<&'static CommandSpec>,
    /// The names statistics are kept under (INFO commandstats, latencystats, metrics):
    /// each command of [`Registry::list`] at its own index, then every subcommand of
    /// the container commands as `container|sub` (Redis 7 counts `CONFIG SET` as
    /// `config|set`).
    pub stat_names: Vec<String>,
    /// Per command index: for a container, the first stat index of its subcommands and
    /// the subcommand table; `None` otherwise.
    subcommands: Vec<Option<(usize, subcommands::Subcommands)>>,
    /// Per stat index past [`Registry::list`]: that subcommand's arity.
    sub_arity: Vec<i32>,
}

impl Registry {
    /// Builds the registry from every family.
    pub fn new() -> Registry {
        let list = all_commands();
        let mut map = hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::default());
        for (i, spec) in list.iter().enumerate() {
            map.insert(spec.name.as_bytes(), (i, *spec));
        }
        let mut stat_names: Vec<String> = list.iter().map(|s| s.name.to_string()).collect();
        let mut subcommands = vec![None; list.len()];
        let mut sub_arity = Vec::new();
        for (container, subs) in subcommands::all() {
            if let Some(&(i, _)) = map.get(container.as_bytes()) {
                subcommands[i] = Some((stat_names.len(), subs));
                stat_names.extend(subs.iter().map(|(sub, _)| format!("{container}|{sub}")));
                sub_arity.extend(subs.iter().map(|&(_, arity)| arity));
            }
        }
        Registry {
            map,
            list,
            stat_names,
            subcommands,
            sub_arity,
        }
    }

    /// The index statistics of command `idx` (from [`Registry::lookup_indexed`]) called
    /// with `args` are kept under: its subcommand's for a container command with a
    /// known subcommand; for an unknown subcommand, a slot no report shows (Redis
    /// counts those in errorstats only); else `idx`.
    #[inline]
    pub fn stat_index(&self, idx: usize, args: &crate::protocol::Args) -> usize {
        match self.subcommands.get(idx) {
            Some(Some((base, subs))) if args.len() > 1 => {
                let sub = args.get(1);
                subs.iter()
                    .position(|(name, _)| name.as_bytes().eq_ignore_ascii_case(sub))
                    .map_or(self.stat_names.len(), |k| base + k)
            }
            _ => idx,
        }
    }

    /// The `ERR wrong number of arguments for 'container|sub' command` error when
    /// `idx` (from [`Registry::stat_index`]) is a subcommand and `argc` arguments do
    /// not fit its arity (Redis checks it before running the command, and counts the
    /// call as rejected).
    #[inline]
    pub fn subcommand_arity_error(&self, idx: usize, argc: usize) -> Option<Vec<u8>> {
        let arity = *self.sub_arity.get(idx.checked_sub(self.list.len())?)?;
        (!arity_fits(arity, argc)).then(|| arity_error(self.stat_names[idx].as_bytes()))
    }

    /// Statistics slots per shard: one per name of [`Registry::stat_names`], plus the
    /// unreported one of unknown subcommands.
    pub fn stat_slots(&self) -> usize {
        self.stat_names.len() + 1
    }

    /// Finds a command by name, case-insensitively, without allocating.
    #[inline]
    pub fn lookup(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.lookup_indexed(name).map(|(_, s)| s)
    }

    /// Finds a command and its index in [`Registry::list`] (used for per-command stats).
    #[inline]
    pub fn lookup_indexed(&self, name: &[u8]) -> Option<(usize, &'static CommandSpec)> {
        if name.len() > 32 {
            return None;
        }
        let mut lower = [0u8; 32];
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        self.map.get(&lower[..name.len()]).copied()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// True when `argc` arguments (the name included) fit a Redis arity: `n` = exactly n,
/// `-n` = at least n.
#[inline]
pub fn arity_fits(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

/// `ERR wrong number of arguments for 'x' command`.
pub fn arity_error(name: &[u8]) -> Vec<u8> {
    let mut m = b"ERR wrong number of arguments for '".to_vec();
    m.extend(name.iter().map(|c| c.to_ascii_lowercase()));
    m.extend_from_slice(b"' command");
    m
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' ` as Redis 7.0 words it
/// (the name cut at 128 bytes, the shown arguments at 128 bytes in all).
pub fn unknown_command_error(args: &Args) -> Vec<u8> {
    let mut shown: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < args.len() && shown.len() < 128 {
        let a = args.get(i);
        let room = 128 - shown.len();
        shown.push(b'\'');
        shown.extend_from_slice(&a[..a.len().min(room)]);
        shown.extend_from_slice(b"' ");
        i += 1;
    }
    let name = args.get(0);
    let mut m = b"ERR unknown command '".to_vec();
    m.extend_from_slice(&name[..name.len().min(128)]);
    m.extend_from_slice(b"', with args beginning with: ");
    m.extend_from_slice(&shown);
    m
}

/// Parses an integer argument as Redis's getLongLongFromObject does.
#[inline]
pub fn parse_int(s: &[u8]) -> Option<i64> {
    crate::protocol::reply::parse_i64(s)
}

/// Case-insensitive ASCII comparison of an argument with a keyword.
#[inline]
pub fn eq_ic(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}
