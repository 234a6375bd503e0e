//! The per-shard Lua engine: a sandboxed Lua 5.1 state, the compiled-script cache, the
//! `redis` API, and the execution of one script on the shard that owns its keys.
//!
//! **Where a script runs.** A script runs, synchronously and to its end, on the shard
//! owning all its declared keys (or the caller's shard when it declares none): nothing
//! else runs on that shard meanwhile, so the script is atomic. `redis.call` executes
//! commands directly against that shard's data. A key the script did not declare may be
//! used when it lives on the same shard; a key of another shard is refused with Redis
//! Cluster's error (`Script attempted to access a non local key in a cluster node`).
//! When the declared keys span shards, the caller locks them all, *borrows* the remote
//! ones (their entries move to the caller's shard for the duration, while locked), runs
//! the script there and hands them back: see `commands::scripting`.
//!
//! **Sandbox.** Each call gets a fresh environment table (holding `KEYS`, `ARGV`)
//! whose reads fall through to a shared, read-only table of the allowed globals;
//! assigning a global raises Redis's `Attempt to modify a readonly table`, reading an
//! unknown one `Script attempted to access nonexistent global variable`. `os`, `io`,
//! `debug`, `package`, `require`, `load`, `loadstring`, `dofile`, `loadfile`, `getfenv`,
//! `setfenv` and `print` are not reachable, and library tables are read-only proxies.
//!
//! **Time limit.** An instruction-count hook checks the elapsed time; past
//! `busy-reply-threshold` the shard is marked busy (other shards answer `-BUSY` for
//! commands that need it; this shard's own clients are answered from the hook by
//! [`crate::server::busy`]) and SCRIPT KILL can stop a script that has not written.

use super::convert::{lua_to_reply, reply_to_lua};
use crate::commands::{flags, ConnCtx, Ctx, Handler};
use crate::protocol::parse::OwnedArgs;
use crate::protocol::reply::ReplyWriter;
use crate::server::client::ClientState;
use crate::shard::{now_ms, registry, ShardData, MAX_SHARDS};
use mlua::{Function, HookTriggers, Lua, MultiValue, StdLib, Table, Value as LuaValue, VmState};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

/// The version scripts see in `redis.REDIS_VERSION` (the one INFO reports).
pub const REDIS_VERSION: &str = "7.0.15";

/// Script state bits of one shard, readable from every shard.
mod state {
    /// A script runs past `busy-reply-threshold`.
    pub const SLOW: u32 = 1;
    /// The running script has written.
    pub const WROTE: u32 = 2;
    /// SCRIPT KILL asked the running script to stop.
    pub const KILL: u32 = 4;
}

static SHARD_STATE: [AtomicU32; MAX_SHARDS] = [const { AtomicU32::new(0) }; MAX_SHARDS];

/// Scripts currently past the busy threshold, over all shards.
static SLOW_SCRIPTS: AtomicU32 = AtomicU32::new(0);

/// True when some shard runs a script past `busy-reply-threshold`: commands without the
/// `allow_busy` flag then answer `-BUSY`, as in Redis (one relaxed load when none does).
#[inline]
pub fn any_slow() -> bool {
    SLOW_SCRIPTS.load(Ordering::Relaxed) != 0
}

/// True when shard `shard` is running a script past the busy threshold.
#[inline]
pub fn is_busy(shard: usize) -> bool {
    SHARD_STATE[shard].load(Ordering::Relaxed) & state::SLOW != 0
}

/// The first shard (of `n`) running a slow script, if any.
pub fn any_busy(n: usize) -> Option<usize> {
    (0..n).find(|&s| is_busy(s))
}

/// What SCRIPT KILL found.
pub enum KillOutcome {
    /// The script will stop at its next check.
    Killed,
    /// No script runs past the threshold.
    NotBusy,
    /// The script has written: it cannot be killed.
    Unkillable,
}

/// SCRIPT KILL: asks every busy shard's script to stop.
pub fn kill(n: usize) -> KillOutcome {
    let mut outcome = KillOutcome::NotBusy;
    for s in &SHARD_STATE[..n] {
        let st = s.load(Ordering::Relaxed);
        if st & state::SLOW == 0 {
            continue;
        }
        if st & state::WROTE != 0 {
            return KillOutcome::Unkillable;
        }
        s.fetch_or(state::KILL, Ordering::Relaxed);
        outcome = KillOutcome::Killed;
    }
    outcome
}

/// Every script body seen by EVAL or SCRIPT LOAD, by lower-case SHA1 hex. Read only
/// when a shard meets a SHA it has not compiled yet; the hot path uses the per-shard
/// compiled cache.
fn store() -> &'static RwLock<HashMap<String, Arc<Vec<u8>>>> {
    static STORE: OnceLock<RwLock<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    STORE.get_or_init(Default::default)
}

/// The SHA1 of a script body, in lower-case hex.
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Remembers a script body (EVAL, SCRIPT LOAD); returns its SHA1.
pub fn remember(body: &[u8]) -> String {
    let sha = sha1_hex(body);
    let known = store()
        .read()
        .map(|m| m.contains_key(&sha))
        .unwrap_or(false);
    if !known {
        if let Ok(mut m) = store().write() {
            m.insert(sha.clone(), Arc::new(body.to_vec()));
        }
    }
    sha
}

/// The body of a known script.
pub fn body_of(sha: &str) -> Option<Arc<Vec<u8>>> {
    store().read().ok()?.get(sha).cloned()
}

/// SCRIPT EXISTS for one SHA.
pub fn exists(sha: &str) -> bool {
    store()
        .read()
        .map(|m| m.contains_key(&sha.to_ascii_lowercase()))
        .unwrap_or(false)
}

/// SCRIPT FLUSH: forgets every body (shards drop their compiled copies through
/// [`flush_local`]).
pub fn flush_store() {
    if let Ok(mut m) = store().write() {
        m.clear();
    }
}

/// Drops this shard's compiled scripts (and its Lua state, which is rebuilt on the next
/// script: SCRIPT FLUSH frees the memory as in Redis).
pub fn flush_local() {
    ENGINE.with(|e| *e.borrow_mut() = None);
}

/// True when this shard has compiled `sha` (EVALSHA's fast check).
pub fn compiled_here(sha: &str) -> bool {
    ENGINE.with(|e| {
        e.borrow()
            .as_ref()
            .is_some_and(|eng| eng.funcs.borrow().contains_key(sha))
    })
}

/// One script execution, as the caller prepared it.
#[derive(Clone)]
pub struct ScriptCall {
    /// Lower-case SHA1 of the body.
    pub sha: String,
    /// Declared keys.
    pub keys: Vec<Vec<u8>>,
    /// Arguments.
    pub argv: Vec<Vec<u8>>,
    /// The caller's database.
    pub db: usize,
    /// The caller's protocol.
    pub resp3: bool,
    /// EVAL_RO / EVALSHA_RO: write commands are refused.
    pub readonly: bool,
    /// Keys of other shards lent to this one for the call: (db, key).
    pub borrowed: Vec<(usize, Vec<u8>)>,
    /// The caller's client id (connection commands called from the script see a client
    /// with this id, the script's database and protocol).
    pub client_id: u64,
}

/// The outcome of a run: the encoded reply, and whether the script wrote.
pub struct ScriptResult {
    /// RESP reply for the caller.
    pub reply: Vec<u8>,
    /// The script executed at least one write command.
    pub wrote: bool,
}

struct Engine {
    lua: Lua,
    run: Function,
    make_env: Function,
    funcs: RefCell<HashMap<String, Function>>,
}

thread_local! {
    static ENGINE: RefCell<Option<Rc<Engine>>> = const { RefCell::new(None) };
    static RUN: RefCell<Option<RunState>> = const { RefCell::new(None) };
}

/// What `redis.call` needs while a script runs.
struct RunState {
    data: *mut ShardData,
    db: usize,
    resp3_calls: bool,
    readonly: bool,
    declared: Vec<Vec<u8>>,
    borrowed: Vec<(usize, Vec<u8>)>,
    wrote: bool,
    started: Instant,
    threshold_ms: u64,
    shard: usize,
    client_id: u64,
    killed_line: Option<i32>,
}

/// Lua code run once per engine: builds the sandbox, returns the runner and the
/// environment factory.
const PRELUDE: &str = r#"
local getinfo = debug.getinfo
local setfenv, xpcall, type, tostring, error = setfenv, xpcall, type, tostring, error
local setmetatable, rawset, pairs, ipairs = setmetatable, rawset, pairs, ipairs
local errmsg = __libellule_errmsg
__libellule_errmsg = nil
for _, name in ipairs({'debug', 'loadstring', 'load', 'dofile', 'loadfile', 'getfenv',
    'setfenv', 'print', 'module', 'require', 'package', 'os', 'io', 'newproxy', 'gcinfo'}) do
  _G[name] = nil
end
local G = {}
for k, v in pairs(_G) do G[k] = v end
-- As in Redis 7.0, pcall hands back the message of an error table ({err=...}) as a
-- string.
local raw_pcall = pcall
local function pcall_result(ok, ...)
  if not ok then
    local e = ...
    if type(e) == 'table' and e.err ~= nil then return false, e.err end
    return false, e
  end
  return ok, ...
end
G.pcall = function(...) return pcall_result(raw_pcall(...)) end
G._G = nil
local function readonly_error() error('Attempt to modify a readonly table', 2) end
local function readonly(lib)
  return setmetatable({}, {__index = lib, __newindex = readonly_error, __metatable = false})
end
for _, name in ipairs({'string', 'table', 'math', 'coroutine', 'redis', 'bit', 'cjson',
    'struct', 'cmsgpack'}) do
  if type(G[name]) == 'table' then G[name] = readonly(G[name]) end
end
local env_meta = {
  __index = function(_, k)
    local v = G[k]
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = readonly_error,
  __metatable = false,
}
local function make_env(keys, argv)
  local e = {KEYS = keys, ARGV = argv}
  e._G = e
  return setmetatable(e, env_meta)
end
local function handler(err)
  local level = 2
  local info = getinfo(level, 'Sl')
  while info and info.source ~= '@user_script' do
    level = level + 1
    info = getinfo(level, 'Sl')
  end
  if type(err) == 'userdata' then err = errmsg(err) end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if info then
    err.source = info.source
    err.line = info.currentline
  end
  return err
end
local function run(f, env)
  setfenv(f, env)
  return xpcall(f, handler)
end
return run, make_env
"#;

fn new_engine() -> mlua::Result<Engine> {
    // SAFETY: the debug library is loaded only for the prelude, which keeps
    // `debug.getinfo` in a local of the error handler and removes `debug` from the
    // globals before any script runs.
    let lua = unsafe {
        Lua::unsafe_new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
            mlua::LuaOptions::default(),
        )
    };
    super::libs::register_all(&lua)?;
    let redis = lua.create_table()?;
    install_redis_api(&lua, &redis)?;
    lua.set_named_registry_value(RAW_CALL_KEY, lua.create_function(raw_call)?)?;
    // SAFETY: both are plain Lua C functions using the documented stack protocol (see
    // `call_c`).
    unsafe {
        redis.set("call", lua.create_c_function(redis_call_c)?)?;
        redis.set("pcall", lua.create_c_function(redis_pcall_c)?)?;
    }
    lua.globals().set("redis", redis)?;
    lua.globals().set(
        "__libellule_errmsg",
        lua.create_function(|_, e: mlua::Error| Ok(error_message(&e)))?,
    )?;
    let (run, make_env): (Function, Function) =
        lua.load(PRELUDE).set_name("=libellule_prelude").call(())?;
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(100_000),
        time_limit_hook,
    )?;
    Ok(Engine {
        lua,
        run,
        make_env,
        funcs: RefCell::new(HashMap::new()),
    })
}

fn engine() -> Result<Rc<Engine>, String> {
    ENGINE.with(|e| {
        let mut slot = e.borrow_mut();
        if slot.is_none() {
            *slot = Some(Rc::new(
                new_engine().map_err(|err| format!("ERR Lua engine: {err}"))?,
            ));
        }
        Ok(slot.as_ref().expect("just set").clone())
    })
}

fn install_redis_api(lua: &Lua, redis: &Table) -> mlua::Result<()> {
    redis.set(
        "error_reply",
        lua.create_function(|lua, msg: LuaValue| {
            let LuaValue::String(s) = msg else {
                return Err(mlua::Error::RuntimeError(
                    "wrong number or type of arguments".into(),
                ));
            };
            let t = lua.create_table()?;
            t.raw_set("err", s)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, msg: LuaValue| {
            let LuaValue::String(s) = msg else {
                return Err(mlua::Error::RuntimeError(
                    "wrong number or type of arguments".into(),
                ));
            };
            let t = lua.create_table()?;
            t.raw_set("ok", s)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, s: mlua::LuaString| Ok(sha1_hex(&s.as_bytes())))?,
    )?;
    redis.set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            let mut it = args.into_iter();
            let level = match it.next() {
                Some(LuaValue::Integer(n)) => n,
                Some(LuaValue::Number(n)) => n as i64,
                _ => {
                    return Err(mlua::Error::RuntimeError(
                        "First argument must be a number (log level).".into(),
                    ))
                }
            };
            let msg: Vec<String> = it
                .map(|v| match v {
                    LuaValue::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                    LuaValue::Integer(n) => n.to_string(),
                    LuaValue::Number(n) => n.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            let msg = msg.join(" ");
            match level {
                0 => log::debug!("script: {msg}"),
                1 => log::info!("script: {msg}"),
                2 => log::info!("script: {msg}"),
                3 => log::warn!("script: {msg}"),
                _ => return Err(mlua::Error::RuntimeError("Invalid debug level.".into())),
            }
            Ok(())
        })?,
    )?;
    redis.set(
        "setresp",
        lua.create_function(|_, v: LuaValue| {
            let n = match v {
                LuaValue::Integer(n) => n,
                LuaValue::Number(n) => n as i64,
                _ => 0,
            };
            if n != 2 && n != 3 {
                return Err(mlua::Error::RuntimeError(
                    "RESP version must be 2 or 3.".into(),
                ));
            }
            with_run(|r| r.resp3_calls = n == 3);
            Ok(())
        })?,
    )?;
    redis.set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.set(name, v)?;
    }
    redis.set("REDIS_VERSION", REDIS_VERSION)?;
    redis.set("REDIS_VERSION_NUM", 0x0007_000f)?;
    Ok(())
}

/// The message of an error raised by a Rust API function, without mlua's decorations
/// (the "runtime error:" prefix and the traceback).
fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Registry key of the Rust `redis.call` core.
const RAW_CALL_KEY: &str = "libellule_raw_call";

/// `redis.call` and `redis.pcall` are C functions, as in Redis: a Lua wrapper would be
/// tail-called by `return redis.call(...)` and its caller's frame (the script line the
/// error must name) would be gone. Both call the Rust core (stored in the registry) with
/// their arguments; on a command error `redis.call` raises the `{err=...}` table itself
/// with `lua_error`, `redis.pcall` returns it.
///
/// # Safety
/// Called by Lua with a valid state. No Rust value with a destructor is alive when
/// `lua_error` unwinds.
unsafe fn call_c(state: *mut mlua::lua_State, raise: bool) -> std::ffi::c_int {
    use mlua::ffi;
    let nargs = ffi::lua_gettop(state);
    ffi::lua_getfield(
        state,
        ffi::LUA_REGISTRYINDEX,
        c"libellule_raw_call".as_ptr(),
    );
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, 2);
    let ok = ffi::lua_toboolean(state, -2) != 0;
    if !ok && raise {
        ffi::lua_error(state);
    }
    1
}

unsafe extern "C-unwind" fn redis_call_c(state: *mut mlua::lua_State) -> std::ffi::c_int {
    // SAFETY: see `call_c`.
    unsafe { call_c(state, true) }
}

unsafe extern "C-unwind" fn redis_pcall_c(state: *mut mlua::lua_State) -> std::ffi::c_int {
    // SAFETY: see `call_c`.
    unsafe { call_c(state, false) }
}

fn with_run<R>(f: impl FnOnce(&mut RunState) -> R) -> Option<R> {
    RUN.with(|r| r.borrow_mut().as_mut().map(f))
}

fn err_value(lua: &Lua, msg: &str) -> mlua::Result<(bool, LuaValue)> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok((false, LuaValue::Table(t)))
}

/// Formats a number argument as Redis does (integral values without a fraction).
fn number_arg(n: f64) -> Vec<u8> {
    if n.fract() == 0.0 && n.abs() < 1e17 {
        itoa::Buffer::new().format(n as i64).as_bytes().to_vec()
    } else {
        let mut out = Vec::new();
        crate::protocol::reply::format_double_g17(n, &mut out);
        out
    }
}

/// `redis.call` / `redis.pcall` core: returns (true, reply) or (false, {err=...}).
fn raw_call(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, LuaValue)> {
    if args.is_empty() {
        return err_value(
            lua,
            "ERR Please specify at least one argument for this redis lib call",
        );
    }
    let mut owned = OwnedArgs::default();
    for a in args.iter() {
        match a {
            LuaValue::String(s) => owned.push(&s.as_bytes()),
            LuaValue::Integer(n) => owned.push(itoa::Buffer::new().format(*n).as_bytes()),
            LuaValue::Number(n) => owned.push(&number_arg(*n)),
            _ => {
                return err_value(
                    lua,
                    "ERR Lua redis lib command arguments must be strings or integers",
                )
            }
        }
    }
    let result = RUN.with(|r| {
        let mut guard = r.borrow_mut();
        let Some(run) = guard.as_mut() else {
            return Err("ERR redis.call outside a script".to_string());
        };
        execute(run, &owned)
    });
    match result {
        Err(msg) => err_value(lua, &msg),
        Ok(bytes) => {
            let mut pos = 0;
            let v = reply_to_lua(lua, &bytes, &mut pos)?;
            if let LuaValue::Table(t) = &v {
                if bytes.first() == Some(&b'-') && t.raw_get::<LuaValue>("err").is_ok() {
                    return Ok((false, v));
                }
            }
            Ok((true, v))
        }
    }
}

/// Runs one command for the script; Err(message) for refusals made before running it.
fn execute(run: &mut RunState, owned: &OwnedArgs) -> Result<Vec<u8>, String> {
    let args = owned.view();
    let Some(spec) = registry().lookup(args.get(0)) else {
        return Err("ERR Unknown Redis command called from script".into());
    };
    if !spec.arity_ok(args.len()) {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    if spec.flags & flags::NOSCRIPT != 0 {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    let wrote_before = run.wrote;
    if spec.flags & flags::WRITE != 0 {
        if run.readonly {
            return Err("ERR Write commands are not allowed from read-only scripts.".into());
        }
        run.wrote = true;
        SHARD_STATE[run.shard].fetch_or(state::WROTE, Ordering::Relaxed);
    }
    // SAFETY: `data` points to the shard's data, exclusively borrowed by `run_script`
    // for the whole call, on this thread; nothing else touches it meanwhile.
    let data = unsafe { &mut *run.data };
    let mut refused = None;
    spec.for_each_key_pos(
        args.len(),
        |i| args.get(i),
        |i| {
            let key = args.get(i);
            let owner = crate::shard::key_shard(key, data.nshards);
            let lent = run.borrowed.iter().any(|(d, k)| *d == run.db && k == key);
            if owner != data.id && !lent {
                refused = Some("ERR Script attempted to access a non local key in a cluster node");
            } else if !run.declared.iter().any(|k| k == key)
                && !data.locks.is_empty()
                && data.locks.is_locked(run.db, key)
            {
                refused =
                    Some("ERR Script attempted to access a key locked by another transaction");
            }
        },
    );
    if let Some(m) = refused {
        return Err(m.into());
    }
    if data.mem.limit != 0 && spec.flags & flags::DENYOOM != 0 {
        // Redis 7.0: a script that has not written yet may not run a command that grows
        // memory while the server is over maxmemory (store mode); in cache mode the shard
        // evicts other keys first, never the script's own.
        if !wrote_before && data.oom() {
            return Err(String::from_utf8_lossy(crate::shard::memory::OOM_ERROR).into_owned());
        }
        let incoming: usize = args.iter().map(|a| a.len()).sum();
        let (db, declared, borrowed) = (run.db, &run.declared, &run.borrowed);
        let mut own: Vec<&[u8]> = Vec::new();
        spec.for_each_key_pos(args.len(), |i| args.get(i), |i| own.push(args.get(i)));
        let protect = |d: usize, k: &[u8]| {
            borrowed
                .iter()
                .any(|(bd, bk)| *bd == d && bk.as_slice() == k)
                || (d == db && (own.contains(&k) || declared.iter().any(|x| x.as_slice() == k)))
        };
        data.make_room(db, incoming, &protect);
    }
    let mut buf = Vec::new();
    let now = now_ms();
    if (spec.name == "publish" || spec.name == "spublish") && data.nshards > 1 {
        // A script cannot wait for the other shards: deliver here now, and send the
        // message to the others (it reaches them after the script). The reply counts
        // the receivers of this shard.
        use crate::server::pubsub::{deliver_local, Kind};
        let kind = if spec.name == "publish" {
            Kind::Channel
        } else {
            Kind::Shard
        };
        let (channel, message) = (args.get(1).to_vec(), args.get(2).to_vec());
        let n = deliver_local(data, kind, &channel, &message);
        let shards = crate::shard::local_shards();
        for s in (0..data.nshards).filter(|&s| s != data.id) {
            let (c, m) = (channel.clone(), message.clone());
            shards.send_later(
                s,
                Box::new(move |d: &mut ShardData| {
                    deliver_local(d, kind, &c, &m);
                }),
            );
        }
        ReplyWriter::new(&mut buf, run.resp3_calls).int(n as i64);
        return Ok(buf);
    }
    match spec.handler {
        Handler::Keyed { run: f, .. } => {
            let mut ctx = Ctx {
                shard: data,
                db: run.db,
                now_ms: now,
                out: ReplyWriter::new(&mut buf, run.resp3_calls),
            };
            f(&mut ctx, args);
        }
        Handler::Conn(f) => {
            let mut client = ClientState::new(run.client_id, data.id, true);
            client.db = run.db;
            client.resp3 = run.resp3_calls;
            client.in_exec = true;
            let handle: crate::server::client::ClientRef = Rc::new(RefCell::new(client.clone()));
            let shards = crate::shard::local_shards();
            let mut ctx = ConnCtx {
                client: &mut client,
                shards: &shards,
                handle: &handle,
                shard: data,
                now_ms: now,
                out: ReplyWriter::new(&mut buf, run.resp3_calls),
                deferred: None,
            };
            f(&mut ctx, args);
            if ctx.deferred.is_some() {
                return Err("ERR This Redis command is not allowed from script".into());
            }
            // SELECT inside a script changes the database for the rest of the script.
            run.db = client.db;
        }
        Handler::Async(_) => {
            return Err("ERR This Redis command is not allowed from script".into());
        }
    }
    Ok(buf)
}

fn time_limit_hook(lua: &Lua, debug: &mlua::debug::Debug) -> mlua::Result<VmState> {
    let _ = lua;
    let stop = RUN.with(|r| {
        let mut guard = r.borrow_mut();
        let run = guard.as_mut()?;
        let elapsed = run.started.elapsed().as_millis() as u64;
        if elapsed < run.threshold_ms {
            return None;
        }
        let st = &SHARD_STATE[run.shard];
        if st.load(Ordering::Relaxed) & state::SLOW == 0 {
            st.fetch_or(state::SLOW, Ordering::Relaxed);
            SLOW_SCRIPTS.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "slow script detected: still in execution after {elapsed} milliseconds; \
                 other shards answer -BUSY for this shard's keys until it ends or \
                 SCRIPT KILL stops it"
            );
        }
        if st.load(Ordering::Relaxed) & state::KILL != 0 {
            run.killed_line = Some(debug.current_line().map(|l| l as i32).unwrap_or(0));
            return Some(());
        }
        None
    });
    match stop {
        Some(()) => Err(mlua::Error::RuntimeError(
            "Script killed by user with SCRIPT KILL...".into(),
        )),
        None => {
            if RUN.with(|r| r.borrow().as_ref().is_some_and(|run| is_busy(run.shard))) {
                // Answer this shard's own clients (-BUSY, SCRIPT KILL, SHUTDOWN NOSAVE).
                crate::server::busy::serve_while_busy();
            }
            Ok(VmState::Continue)
        }
    }
}

/// Compiles (or finds) the function of `sha`. Err = the error reply.
fn function_for(eng: &Engine, sha: &str) -> Result<Function, Vec<u8>> {
    if let Some(f) = eng.funcs.borrow().get(sha) {
        return Ok(f.clone());
    }
    let Some(body) = body_of(sha) else {
        return Err(b"NOSCRIPT No matching script. Please use EVAL.".to_vec());
    };
    match eng
        .lua
        .load(body.as_slice())
        .set_name("@user_script")
        .into_function()
    {
        Ok(f) => {
            eng.funcs.borrow_mut().insert(sha.to_string(), f.clone());
            Ok(f)
        }
        Err(e) => Err(compile_error(&e)),
    }
}

/// `ERR Error compiling script (new function): <lua message>`.
pub fn compile_error(e: &mlua::Error) -> Vec<u8> {
    let msg = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let mut m = b"ERR Error compiling script (new function): ".to_vec();
    m.extend_from_slice(msg.as_bytes());
    m
}

/// Checks that a body compiles (SCRIPT LOAD, EVAL of a new script). Err = error reply.
pub fn check_compiles(body: &[u8]) -> Result<(), Vec<u8>> {
    let eng = engine().map_err(String::into_bytes)?;
    eng.lua
        .load(body)
        .set_name("@user_script")
        .into_function()
        .map(|_| ())
        .map_err(|e| compile_error(&e))
}

/// Runs a script on this shard (`d` is this shard's data) and encodes its reply.
pub fn run_script(d: &mut ShardData, call: ScriptCall) -> ScriptResult {
    let mut reply = Vec::new();
    let mut out = ReplyWriter::new(&mut reply, call.resp3);
    let eng = match engine() {
        Ok(e) => e,
        Err(msg) => {
            out.error(msg.as_bytes());
            return ScriptResult {
                reply,
                wrote: false,
            };
        }
    };
    let f = match function_for(&eng, &call.sha) {
        Ok(f) => f,
        Err(msg) => {
            out.error(&msg);
            return ScriptResult {
                reply,
                wrote: false,
            };
        }
    };
    let threshold_ms = d
        .config
        .extra
        .get("busy-reply-threshold")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000u64);
    let shard = d.id;
    let lua = &eng.lua;
    let seq = |items: &[Vec<u8>]| -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, k) in items.iter().enumerate() {
            t.raw_set(i + 1, lua.create_string(k)?)?;
        }
        Ok(t)
    };
    let env = match (seq(&call.keys), seq(&call.argv)) {
        (Ok(k), Ok(a)) => eng.make_env.call::<Table>((k, a)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let env = match env {
        Ok(e) => e,
        Err(e) => {
            out.error(format!("ERR {e}").as_bytes());
            return ScriptResult {
                reply,
                wrote: false,
            };
        }
    };
    RUN.with(|r| {
        *r.borrow_mut() = Some(RunState {
            data: d as *mut ShardData,
            db: call.db,
            resp3_calls: false,
            readonly: call.readonly,
            declared: call.keys,
            borrowed: call.borrowed,
            wrote: false,
            started: Instant::now(),
            threshold_ms,
            shard,
            client_id: call.client_id,
            killed_line: None,
        })
    });
    let result = eng.run.call::<(bool, LuaValue)>((f, env));
    let run = RUN.with(|r| r.borrow_mut().take()).expect("run state");
    if SHARD_STATE[shard].swap(0, Ordering::Relaxed) & state::SLOW != 0 {
        SLOW_SCRIPTS.fetch_sub(1, Ordering::Relaxed);
        log::warn!(
            "slow script finished after {} ms",
            run.started.elapsed().as_millis()
        );
    }
    match result {
        Ok((true, v)) => lua_to_reply(&eng.lua, &mut out, &v, run.resp3_calls, 0),
        Ok((false, LuaValue::Table(t))) => {
            let msg: Vec<u8> = match t.raw_get::<LuaValue>("err") {
                Ok(LuaValue::String(s)) => s.as_bytes().to_vec(),
                _ => b"ERR unknown error".to_vec(),
            };
            let msg = if let Some(line) = run.killed_line {
                format!(
                    "ERR Script killed by user with SCRIPT KILL... script: {}, on @user_script:{line}.",
                    call.sha
                )
                .into_bytes()
            } else {
                let mut m = msg.strip_prefix(b"-").unwrap_or(&msg).to_vec();
                let source = t.raw_get::<LuaValue>("source");
                let line = t.raw_get::<LuaValue>("line");
                if let (Ok(LuaValue::String(src)), Ok(line)) = (source, line) {
                    let line = match line {
                        LuaValue::Integer(n) => n,
                        LuaValue::Number(n) => n as i64,
                        _ => 0,
                    };
                    m.extend_from_slice(
                        format!(
                            " script: {}, on {}:{line}.",
                            call.sha,
                            String::from_utf8_lossy(&src.as_bytes())
                        )
                        .as_bytes(),
                    );
                }
                m
            };
            out.error(&msg);
        }
        Ok((false, other)) => {
            out.error(format!("ERR Error running script: {other:?}").as_bytes());
        }
        Err(e) => {
            if let Some(line) = run.killed_line {
                out.error(
                    format!(
                        "ERR Script killed by user with SCRIPT KILL... script: {}, on @user_script:{line}.",
                        call.sha
                    )
                    .as_bytes(),
                );
            } else {
                out.error(format!("ERR Error running script {}, {e}", call.sha).as_bytes());
            }
        }
    }
    ScriptResult {
        reply,
        wrote: run.wrote,
    }
}
