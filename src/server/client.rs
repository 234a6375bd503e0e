//! Per-connection client state (CLIENT LIST fields, selected db, protocol...).

use crate::commands::CommandSpec;
use crate::protocol::parse::OwnedArgs;
use std::time::Instant;

/// A command queued between MULTI and EXEC.
#[derive(Clone, Debug)]
pub struct Queued {
    /// Index of the command in the registry (per-command statistics).
    pub idx: usize,
    /// The command.
    pub spec: &'static CommandSpec,
    /// Its arguments, name included.
    pub args: OwnedArgs,
}

/// The state of an open MULTI block.
#[derive(Clone, Debug, Default)]
pub struct MultiState {
    /// Commands queued so far.
    pub queued: Vec<Queued>,
    /// A command was refused while queueing: EXEC answers `-EXECABORT`.
    pub aborted: bool,
}

/// What CLIENT REPLY asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent (default).
    On,
    /// No replies until CLIENT REPLY ON.
    Off,
    /// The next command's reply is dropped.
    Skip,
    /// Set by SKIP for the command that follows it.
    SkipNext,
}

/// State of one client connection.
#[derive(Clone, Debug)]
pub struct ClientState {
    /// Unique id (CLIENT ID), unique across shards.
    pub id: u64,
    /// Selected database.
    pub db: usize,
    /// True after `HELLO 3`.
    pub resp3: bool,
    /// CLIENT SETNAME.
    pub name: Vec<u8>,
    /// True once AUTH succeeded or when no password is configured.
    pub authenticated: bool,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Vec<u8>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Vec<u8>,
    /// Peer address `ip:port`.
    pub addr: String,
    /// Local address `ip:port`.
    pub laddr: String,
    /// Socket fd.
    pub fd: i32,
    /// Connection time.
    pub created: Instant,
    /// Time of the last command, Unix milliseconds.
    pub last_active_ms: u64,
    /// Name of the last command.
    pub last_cmd: &'static str,
    /// CLIENT REPLY mode.
    pub reply_mode: ReplyMode,
    /// CLIENT NO-EVICT.
    pub no_evict: bool,
    /// Set by CLIENT KILL or QUIT: close once the pending replies are written.
    pub close_requested: bool,
    /// True while this client is in MONITOR mode.
    pub monitor: bool,
    /// Home shard.
    pub shard: usize,
    /// The open MULTI block, if any (boxed: most clients never open one).
    pub multi: Option<Box<MultiState>>,
    /// Keys under WATCH: (db, key). Their registrations live on the owning shards.
    pub watched: Vec<(usize, Vec<u8>)>,
    /// Pub/sub subscriptions: channels, patterns and shard channels.
    pub subs: super::pubsub::Subscriptions,
    /// True while EXEC runs this client's queued commands (or a script runs): blocking
    /// commands then answer at once as if their timeout had passed, as in Redis.
    pub in_exec: bool,
}

impl ClientState {
    /// A fresh client.
    pub fn new(id: u64, shard: usize, authenticated: bool) -> ClientState {
        let now = Instant::now();
        ClientState {
            id,
            db: 0,
            resp3: false,
            name: Vec::new(),
            authenticated,
            lib_name: Vec::new(),
            lib_ver: Vec::new(),
            addr: String::new(),
            laddr: String::new(),
            fd: -1,
            created: now,
            last_active_ms: crate::shard::now_ms(),
            last_cmd: "NULL",
            reply_mode: ReplyMode::On,
            no_evict: false,
            close_requested: false,
            monitor: false,
            shard,
            in_exec: false,
            multi: None,
            watched: Vec::new(),
            subs: Default::default(),
        }
    }

    /// The CLIENT LIST / CLIENT INFO line for this client (without trailing newline).
    pub fn info_line(&self) -> String {
        let age = self.created.elapsed().as_secs();
        let idle = crate::shard::now_ms().saturating_sub(self.last_active_ms) / 1000;
        let mut flags = String::new();
        if self.monitor {
            flags.push('O');
        }
        if self.subs.count() + self.subs.shard_count() > 0 {
            flags.push('P');
        }
        if self.multi.is_some() {
            flags.push('x');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let multi: i64 = self.multi.as_ref().map_or(-1, |m| m.queued.len() as i64);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&self.name),
            age,
            idle,
            flags,
            self.db,
            self.subs.channels.len(),
            self.subs.patterns.len(),
            self.subs.shard_channels.len(),
            multi,
            self.last_cmd,
            if self.resp3 { 3 } else { 2 },
            String::from_utf8_lossy(&self.lib_name),
            String::from_utf8_lossy(&self.lib_ver),
        )
    }
}

/// Shared handle on a client's state, kept by the connection and by the shard's client
/// table (so CLIENT LIST and CLIENT KILL can reach it).
pub type ClientRef = std::rc::Rc<std::cell::RefCell<ClientState>>;

/// What the shard's client table keeps.
pub type ClientInfo = ClientRef;
