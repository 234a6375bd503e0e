//! Resumable RESP request parser.
//!
//! Mirrors Redis 7.0's `processInlineBuffer` / `processMultibulkBuffer`
//! (`networking.c`) and `sdssplitargs` (`sds.c`), including their quirks:
//!
//! * A request whose first byte is `*` is a multibulk request; anything else
//!   is an inline request (one line, split like `sdssplitargs`).
//! * An inline line ends at the first `\n`; one `\r` right before it is
//!   dropped. A blank line (or one holding only spaces) is an empty request.
//! * The byte after the `\r` of a `*<n>` / `$<n>` line is skipped without
//!   checking that it is `\n`, and the two bytes after a bulk payload are
//!   skipped without checking that they are `\r\n`.
//! * Line terminators are searched with C `strchr`, which stops at a NUL
//!   byte: a NUL before the terminator of an inline line or of a `*` / `$`
//!   line means the terminator is never found, so the request waits until
//!   the pending bytes exceed the inline limit and then fails with the
//!   matching "too big ..." error. NUL bytes inside bulk payloads are fine.
//! * A count `<= 0` (`*0`, `*-1`, `*-5`) is an empty request.
//! * The "too big" errors are raised only while no terminator is present in
//!   the bytes received so far, exactly like Redis: a long inline line whose
//!   `\n` has already arrived is accepted.
//!
//! The parser keeps its position inside the current frame between calls, so
//! a frame arriving in many pieces is scanned once (linear time overall).

use std::fmt;

use nom::bytes::streaming::{tag, take, take_till};
use nom::number::streaming::u8 as any_byte;
use nom::sequence::terminated;
use nom::IResult;

use super::reply::parse_i64;

/// Redis's default `proto-max-bulk-len` (512 MiB).
pub const DEFAULT_PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Largest multibulk count Redis 7.0 accepts (`INT_MAX`; Redis 7.0 has no
/// lower limit: `*1048577` is accepted, `*2147483648` is not).
pub const DEFAULT_MAX_MULTIBULK_LEN: usize = i32::MAX as usize;
/// Redis's `PROTO_INLINE_MAX_SIZE` (64 KiB): the most bytes an unterminated
/// inline request, `*<n>` line or `$<n>` line may occupy.
pub const DEFAULT_INLINE_MAX: usize = 64 * 1024;

/// Limits applied while parsing (Redis defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted bulk argument (`proto-max-bulk-len`); a larger
    /// declared length is "invalid bulk length".
    pub proto_max_bulk_len: usize,
    /// Largest accepted multibulk count; a larger one is "invalid multibulk
    /// length". Defaults to Redis 7.0's `INT_MAX`.
    pub max_multibulk_len: usize,
    /// Pending bytes without a line terminator allowed for an inline request,
    /// a `*<n>` line or a `$<n>` line before the "too big ..." errors.
    pub inline_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            max_multibulk_len: DEFAULT_MAX_MULTIBULK_LEN,
            inline_max: DEFAULT_INLINE_MAX,
        }
    }
}

/// The kinds of protocol error Redis reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolErrorKind {
    /// `*<n>` with a malformed or too large `n`.
    InvalidMultibulkLength,
    /// `$<n>` with a malformed, negative or too large `n` (also used when a
    /// frame would exceed 4 GiB, which spans cannot address).
    InvalidBulkLength,
    /// An argument line of a multibulk request did not start with `$`; holds
    /// the byte found.
    ExpectedDollar(u8),
    /// No `\r` within the limit after a `*`.
    TooBigMbulkCount,
    /// No `\r` within the limit for a `$<n>` line.
    TooBigBulkCount,
    /// No `\n` within the limit for an inline request.
    TooBigInline,
    /// An inline request with unbalanced quotes (or a closing quote not
    /// followed by a space).
    UnbalancedQuotes,
    /// `*<n>` with `n > 10` while authentication is required.
    UnauthenticatedMultibulkLength,
    /// `$<n>` with `n > 16384` while authentication is required.
    UnauthenticatedBulkLength,
}

/// A protocol error. After one the server writes it and closes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    kind: ProtocolErrorKind,
    text: String,
    bytes: Vec<u8>,
}

impl ProtocolError {
    /// Builds the error for `kind` with Redis's exact message.
    pub fn new(kind: ProtocolErrorKind) -> ProtocolError {
        let fixed = match kind {
            ProtocolErrorKind::InvalidMultibulkLength => "invalid multibulk length",
            ProtocolErrorKind::InvalidBulkLength => "invalid bulk length",
            ProtocolErrorKind::TooBigMbulkCount => "too big mbulk count string",
            ProtocolErrorKind::TooBigBulkCount => "too big bulk count string",
            ProtocolErrorKind::TooBigInline => "too big inline request",
            ProtocolErrorKind::UnbalancedQuotes => "unbalanced quotes in request",
            ProtocolErrorKind::UnauthenticatedMultibulkLength => "unauthenticated multibulk length",
            ProtocolErrorKind::UnauthenticatedBulkLength => "unauthenticated bulk length",
            ProtocolErrorKind::ExpectedDollar(_) => "",
        };
        let mut bytes = b"ERR Protocol error: ".to_vec();
        match kind {
            ProtocolErrorKind::ExpectedDollar(got) => {
                // Redis formats the byte with %c, then replaces CR/LF by spaces.
                let got = if got == b'\r' || got == b'\n' {
                    b' '
                } else {
                    got
                };
                bytes.extend_from_slice(b"expected '$', got '");
                bytes.push(got);
                bytes.push(b'\'');
            }
            _ => bytes.extend_from_slice(fixed.as_bytes()),
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        ProtocolError { kind, text, bytes }
    }

    /// The Redis error line body without the leading `-` and trailing CRLF,
    /// e.g. `"ERR Protocol error: invalid multibulk length"`. A non-UTF-8 byte
    /// in "expected '$', got 'X'" shows as U+FFFD here; see [`Self::as_bytes`].
    pub fn message(&self) -> &str {
        &self.text
    }

    /// The exact bytes Redis would send (without `-` and CRLF); differs from
    /// [`Self::message`] only when it quotes a non-UTF-8 byte.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Which error this is.
    pub fn kind(&self) -> ProtocolErrorKind {
        self.kind
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ProtocolError {}

/// A borrowed view of a request's arguments.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    base: &'a [u8],
    spans: &'a [(u32, u32)],
}

impl<'a> Args<'a> {
    /// Builds a view from a byte buffer and `(start, len)` spans into it.
    pub fn from_parts(base: &'a [u8], spans: &'a [(u32, u32)]) -> Args<'a> {
        Args { base, spans }
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (start, len) = self.spans[i];
        let start = start as usize;
        &self.base[start..start + len as usize]
    }

    /// Iterates over the arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let base = self.base;
        self.spans
            .iter()
            .map(move |&(s, l)| &base[s as usize..s as usize + l as usize])
    }

    /// Copies the arguments into owned vectors.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.iter().map(|a| a.to_vec()).collect()
    }
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|a| String::from_utf8_lossy(a)))
            .finish()
    }
}

/// An owned request (for sending to another thread): one contiguous byte
/// buffer plus `(start, len)` spans into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedArgs {
    /// All arguments, concatenated.
    pub data: Vec<u8>,
    /// `(start, len)` of each argument within `data`.
    pub spans: Vec<(u32, u32)>,
}

impl OwnedArgs {
    /// Copies a borrowed request.
    pub fn from_args(a: &Args) -> OwnedArgs {
        let total: usize = a.spans.iter().map(|&(_, l)| l as usize).sum();
        let mut o = OwnedArgs {
            data: Vec::with_capacity(total),
            spans: Vec::with_capacity(a.len()),
        };
        for arg in a.iter() {
            o.push(arg);
        }
        o
    }

    /// Builds a request from argument slices.
    pub fn from_slices(parts: &[&[u8]]) -> OwnedArgs {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut o = OwnedArgs {
            data: Vec::with_capacity(total),
            spans: Vec::with_capacity(parts.len()),
        };
        for p in parts {
            o.push(p);
        }
        o
    }

    /// Appends one argument.
    ///
    /// # Panics
    /// If the buffer would grow past `u32::MAX` bytes.
    pub fn push(&mut self, arg: &[u8]) {
        let start = u32::try_from(self.data.len()).expect("OwnedArgs larger than 4 GiB");
        let len = u32::try_from(arg.len()).expect("argument larger than 4 GiB");
        assert!(
            start.checked_add(len).is_some(),
            "OwnedArgs larger than 4 GiB"
        );
        self.data.extend_from_slice(arg);
        self.spans.push((start, len));
    }

    /// Borrowed view of the arguments.
    pub fn view(&self) -> Args<'_> {
        Args::from_parts(&self.data, &self.spans)
    }
}

/// Where the parser is within the current frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between frames; the spans describe the last completed request.
    Idle,
    /// Inside an inline request, looking for its `\n`.
    Inline,
    /// Waiting for the `*<n>\r?` line.
    Count,
    /// Reading `remaining` more bulk arguments.
    Bulks,
}

/// Result of searching for a line terminator the way C `strchr` would.
enum Find {
    /// Found at this absolute index.
    At(usize),
    /// A NUL byte comes first: `strchr` never gets past it.
    Blocked,
    /// Not in the bytes received so far.
    NotYet,
}

#[inline]
fn find_term(input: &[u8], from: usize, term: u8) -> Find {
    match input[from..].iter().position(|&b| b == term || b == 0) {
        Some(i) if input[from + i] == term => Find::At(from + i),
        Some(_) => Find::Blocked,
        None => Find::NotYet,
    }
}

/// `<type byte><digits>\r<any byte>`: a complete `*<n>` or `$<n>` line.
/// Redis does not check that the byte after `\r` is `\n`.
fn header_line(i: &[u8]) -> IResult<&[u8], (u8, &[u8])> {
    let (i, kind) = any_byte(i)?;
    let (i, digits) = terminated(take_till(|b| b == b'\r'), tag(&b"\r"[..]))(i)?;
    let (i, _) = take(1usize)(i)?;
    Ok((i, (kind, digits)))
}

/// A bulk payload of `len` bytes followed by two bytes Redis skips unchecked.
fn payload(len: usize) -> impl Fn(&[u8]) -> IResult<&[u8], &[u8]> {
    move |i| terminated(take(len), take(2usize))(i)
}

/// C `isspace` in the "C" locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline request line like Redis's `sdssplitargs`, appending the
/// unescaped arguments to `out` and their spans to `spans`. Returns false on
/// unbalanced quotes. `line` holds no NUL byte (the caller guarantees it);
/// the end of `line` plays the part of C's terminating NUL.
fn split_inline(line: &[u8], out: &mut Vec<u8>, spans: &mut Vec<(u32, u32)>) -> bool {
    let n = line.len();
    let at = |k: usize| -> u8 {
        if k < n {
            line[k]
        } else {
            0
        }
    };
    let mut i = 0;
    loop {
        while i < n && is_c_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return true;
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = at(i);
            if in_dq {
                if c == b'\\' && at(i + 1) == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(at(i + 2)), hex_val(at(i + 3))) {
                        out.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && at(i + 1) != 0 {
                    out.push(match at(i + 1) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                } else if c == b'"' {
                    // The closing quote must be followed by a space or the end.
                    let next = at(i + 1);
                    if next != 0 && !is_c_space(next) {
                        return false;
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return false;
                } else {
                    out.push(c);
                    i += 1;
                }
            } else if in_sq {
                if c == b'\\' && at(i + 1) == b'\'' {
                    out.push(b'\'');
                    i += 2;
                } else if c == b'\'' {
                    let next = at(i + 1);
                    if next != 0 && !is_c_space(next) {
                        return false;
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return false;
                } else {
                    out.push(c);
                    i += 1;
                }
            } else {
                match c {
                    // Note: unlike the blank skipping above, \v and \f do not
                    // end an unquoted token.
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        i += 1;
                        break;
                    }
                    0 => break,
                    b'"' => {
                        in_dq = true;
                        i += 1;
                    }
                    b'\'' => {
                        in_sq = true;
                        i += 1;
                    }
                    _ => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
        }
        // `out` never exceeds the line length, which the caller bounds.
        spans.push((start as u32, (out.len() - start) as u32));
    }
}

/// Resumable request parser.
///
/// The caller keeps the unconsumed bytes of the connection at the front of
/// its buffer and calls [`Parser::parse`] again with the grown buffer after
/// each read. The parser remembers how far it got in the current frame, so
/// a frame arriving in many pieces is not re-parsed from its start.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    state: State,
    /// Offset of the next unparsed byte of the current frame.
    pos: usize,
    /// Bytes of the current line before this offset hold no terminator.
    scan: usize,
    /// A NUL precedes the current line's terminator (see module docs).
    blocked: bool,
    /// Bulk arguments still expected.
    remaining: usize,
    /// Declared length of the bulk being read, once its `$` line is parsed.
    bulk: Option<usize>,
    spans: Vec<(u32, u32)>,
    /// Unescaped inline arguments.
    scratch: Vec<u8>,
    /// The spans point into `scratch` rather than the input.
    inline: bool,
    needed: usize,
    /// The connection has not authenticated yet (Redis then caps counts).
    auth_required: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(Limits::default())
    }
}

impl Parser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            state: State::Idle,
            pos: 0,
            scan: 0,
            blocked: false,
            remaining: 0,
            bulk: None,
            spans: Vec::new(),
            scratch: Vec::new(),
            inline: false,
            needed: 1,
            auth_required: false,
        }
    }

    /// Replaces the limits; they apply from the next call on, also to the
    /// frame in progress.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Marks the connection as not (yet) authenticated. While set, as in
    /// Redis 7.0, a multibulk count above 10 fails with "unauthenticated
    /// multibulk length" and a bulk length above 16384 with "unauthenticated
    /// bulk length". Clear it once AUTH / HELLO succeeds. Default: false.
    pub fn set_auth_required(&mut self, required: bool) {
        self.auth_required = required;
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets any partial frame and the last request's arguments.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.pos = 0;
        self.scan = 0;
        self.blocked = false;
        self.remaining = 0;
        self.bulk = None;
        self.spans.clear();
        self.scratch.clear();
        self.inline = false;
        self.needed = 1;
    }

    /// Minimum total input length before another [`Parser::parse`] call can
    /// make progress (a hint so the caller can skip calls). After a complete
    /// request (or an error) it is 1: the next frame starts at the front of
    /// the next input.
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// True while a frame is partly parsed.
    pub fn in_progress(&self) -> bool {
        self.state != State::Idle
    }

    /// Arguments of the request just completed. For multibulk requests the
    /// slices point into `input` (zero copy), which must be the buffer given
    /// to the `parse` call that returned `Ok(Some(_))`; inline requests point
    /// into an internal scratch buffer. Only meaningful until the next call
    /// to `parse` or `reset`.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        let base = if self.inline {
            &self.scratch[..]
        } else {
            input
        };
        Args::from_parts(base, &self.spans)
    }

    /// Parses from the front of `input`, which must start where the current
    /// frame starts (everything before it consumed).
    ///
    /// * `Ok(Some(consumed))`: one complete request ends at
    ///   `input[..consumed]`; its arguments are available through
    ///   [`Parser::args`]. An empty request (blank inline line, `*0`, `*-1`)
    ///   has zero arguments and should be skipped.
    /// * `Ok(None)`: more bytes are needed (the parser keeps its state; call
    ///   again with the same bytes plus more).
    /// * `Err(_)`: protocol error; the parser is reset.
    pub fn parse(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let r = self.step(input);
        if r.is_err() {
            self.reset();
        }
        r
    }

    fn step(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if self.state != State::Idle && input.len() < self.pos.max(self.scan) {
            // The caller broke the contract (the buffer shrank under a partial
            // frame): start this frame over rather than index out of bounds.
            self.state = State::Idle;
        }
        if self.state == State::Idle {
            self.spans.clear();
            self.scratch.clear();
            self.inline = false;
            self.pos = 0;
            self.scan = 0;
            self.blocked = false;
            self.bulk = None;
            self.remaining = 0;
            match input.first() {
                None => {
                    self.needed = 1;
                    return Ok(None);
                }
                Some(b'*') => self.state = State::Count,
                Some(_) => self.state = State::Inline,
            }
        }
        match self.state {
            State::Inline => self.step_inline(input),
            State::Count => {
                let Some(cr) = self.find_line(input, ProtocolErrorKind::TooBigMbulkCount)? else {
                    return Ok(None);
                };
                let digits = self.header_digits(input, cr);
                let count = match parse_i64(digits) {
                    Some(n) if n <= 0 => {
                        // "*0", "*-1", ...: an empty request.
                        return Ok(Some(self.complete(cr + 2)));
                    }
                    Some(n) if n as u64 <= self.limits.max_multibulk_len as u64 => n as usize,
                    _ => {
                        return Err(ProtocolError::new(
                            ProtocolErrorKind::InvalidMultibulkLength,
                        ))
                    }
                };
                if count > 10 && self.auth_required {
                    return Err(ProtocolError::new(
                        ProtocolErrorKind::UnauthenticatedMultibulkLength,
                    ));
                }
                self.advance(cr + 2);
                self.remaining = count;
                self.spans.reserve(count.min(1024));
                self.state = State::Bulks;
                self.step_bulks(input)
            }
            State::Bulks => self.step_bulks(input),
            State::Idle => unreachable!(),
        }
    }

    fn step_inline(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if !self.blocked {
            match find_term(input, self.scan, b'\n') {
                Find::At(nl) => {
                    let end = if nl > 0 && input[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    if end > u32::MAX as usize {
                        return Err(ProtocolError::new(ProtocolErrorKind::TooBigInline));
                    }
                    if !split_inline(&input[..end], &mut self.scratch, &mut self.spans) {
                        return Err(ProtocolError::new(ProtocolErrorKind::UnbalancedQuotes));
                    }
                    let consumed = self.complete(nl + 1);
                    self.inline = true;
                    return Ok(Some(consumed));
                }
                Find::Blocked => self.blocked = true,
                Find::NotYet => self.scan = input.len(),
            }
        }
        let inline_max = self.limits.inline_max;
        if input.len() > inline_max {
            return Err(ProtocolError::new(ProtocolErrorKind::TooBigInline));
        }
        self.needed = if self.blocked {
            inline_max + 1
        } else {
            input.len() + 1
        };
        Ok(None)
    }

    fn step_bulks(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        while self.remaining > 0 {
            let len = match self.bulk {
                Some(len) => len,
                None => {
                    let Some(cr) = self.find_line(input, ProtocolErrorKind::TooBigBulkCount)?
                    else {
                        return Ok(None);
                    };
                    let first = input[self.pos];
                    if first != b'$' {
                        return Err(ProtocolError::new(ProtocolErrorKind::ExpectedDollar(first)));
                    }
                    let digits = self.header_digits(input, cr);
                    let invalid = || ProtocolError::new(ProtocolErrorKind::InvalidBulkLength);
                    let len = match parse_i64(digits) {
                        Some(n) if n >= 0 && n as u64 <= self.limits.proto_max_bulk_len as u64 => {
                            n as usize
                        }
                        _ => return Err(invalid()),
                    };
                    if len > 16384 && self.auth_required {
                        return Err(ProtocolError::new(
                            ProtocolErrorKind::UnauthenticatedBulkLength,
                        ));
                    }
                    // Spans are u32: refuse frames that would not fit.
                    let frame_end = (cr as u64 + 2) + len as u64 + 2;
                    if frame_end > u32::MAX as u64 {
                        return Err(invalid());
                    }
                    self.advance(cr + 2);
                    self.bulk = Some(len);
                    len
                }
            };
            match payload(len)(&input[self.pos..]) {
                Ok(_) => {
                    self.spans.push((self.pos as u32, len as u32));
                    self.advance(self.pos + len + 2);
                    self.bulk = None;
                    self.remaining -= 1;
                }
                Err(_) => {
                    // Incomplete: the frame needs the payload and its two
                    // trailing bytes (nom reports only the first shortfall).
                    self.needed = self.pos + len + 2;
                    return Ok(None);
                }
            }
        }
        Ok(Some(self.complete(self.pos)))
    }

    /// Finds the `\r` ending the line that starts at `self.pos` and checks
    /// that one more byte follows it. `Ok(None)` means wait (with `needed`
    /// set); an error is raised when no `\r` is in sight and more than
    /// `inline_max` bytes are pending.
    fn find_line(
        &mut self,
        input: &[u8],
        too_big: ProtocolErrorKind,
    ) -> Result<Option<usize>, ProtocolError> {
        let start = self.pos;
        if !self.blocked {
            match find_term(input, self.scan.max(start), b'\r') {
                Find::At(cr) => {
                    self.scan = cr;
                    if cr + 2 <= input.len() {
                        return Ok(Some(cr));
                    }
                    self.needed = cr + 2;
                    return Ok(None);
                }
                Find::Blocked => self.blocked = true,
                Find::NotYet => self.scan = input.len(),
            }
        }
        let inline_max = self.limits.inline_max;
        if input.len() - start > inline_max {
            return Err(ProtocolError::new(too_big));
        }
        self.needed = if self.blocked {
            start + inline_max + 1
        } else {
            input.len() + 1
        };
        Ok(None)
    }

    /// The digits of the complete header line `input[self.pos..cr + 2]`.
    fn header_digits<'i>(&self, input: &'i [u8], cr: usize) -> &'i [u8] {
        match header_line(&input[self.pos..cr + 2]) {
            Ok((_, (_, digits))) => digits,
            // Unreachable: find_line guarantees the line is complete.
            Err(_) => &[],
        }
    }

    fn advance(&mut self, to: usize) {
        self.pos = to;
        self.scan = to;
    }

    fn complete(&mut self, consumed: usize) -> usize {
        self.state = State::Idle;
        self.pos = 0;
        self.scan = 0;
        self.needed = 1;
        consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Req = Vec<Vec<u8>>;

    fn lim() -> Limits {
        Limits::default()
    }

    /// Parses a whole buffer, returning the requests (empty ones included)
    /// and the error, if any, that stopped it, plus unconsumed bytes.
    fn parse_all(input: &[u8], limits: Limits) -> (Vec<Req>, Option<String>, usize) {
        let mut p = Parser::new(limits);
        let mut off = 0;
        let mut out = Vec::new();
        loop {
            match p.parse(&input[off..]) {
                Ok(Some(n)) => {
                    assert!(n > 0);
                    out.push(p.args(&input[off..off + n]).to_vecs());
                    off += n;
                }
                Ok(None) => return (out, None, input.len() - off),
                Err(e) => return (out, Some(e.message().to_string()), input.len() - off),
            }
        }
    }

    /// Feeds `input` in pieces that end at the given cut points (the
    /// connection buffer grows; consumed bytes are dropped from the front).
    fn parse_chunked(input: &[u8], cuts: &[usize], limits: Limits) -> (Vec<Req>, Option<String>) {
        let mut p = Parser::new(limits);
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut fed = 0;
        let mut ends: Vec<usize> = cuts.to_vec();
        ends.push(input.len());
        for end in ends {
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            loop {
                if !buf.is_empty() && buf.len() < p.needed() {
                    // The hint promises no progress; check it is honest.
                    let before = (p.state, p.pos, p.remaining, p.bulk, p.spans.len());
                    assert_eq!(p.parse(&buf), Ok(None));
                    assert_eq!(before, (p.state, p.pos, p.remaining, p.bulk, p.spans.len()));
                    break;
                }
                match p.parse(&buf) {
                    Ok(Some(n)) => {
                        out.push(p.args(&buf[..n]).to_vecs());
                        buf.drain(..n);
                    }
                    Ok(None) => {
                        assert!(p.needed() > buf.len(), "needed must exceed what we have");
                        break;
                    }
                    Err(e) => return (out, Some(e.message().to_string())),
                }
            }
        }
        (out, None)
    }

    fn v(parts: &[&[u8]]) -> Req {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    fn one(input: &[u8]) -> Req {
        let (reqs, err, rest) = parse_all(input, lim());
        assert_eq!(err, None, "input {:?}", String::from_utf8_lossy(input));
        assert_eq!(rest, 0);
        assert_eq!(reqs.len(), 1);
        reqs.into_iter().next().unwrap()
    }

    fn err_of(input: &[u8]) -> String {
        let (_, err, _) = parse_all(input, lim());
        err.unwrap_or_else(|| panic!("no error for {:?}", String::from_utf8_lossy(input)))
    }

    #[test]
    fn multibulk_basic_and_zero_copy() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = Parser::new(lim());
        assert_eq!(p.parse(input), Ok(Some(input.len())));
        let a = p.args(input);
        assert_eq!(a.len(), 3);
        assert!(!a.is_empty());
        assert_eq!(a.get(0), b"SET");
        assert_eq!(a.get(2), b"hello");
        let range = input.as_ptr_range();
        assert!(a.iter().all(|s| range.contains(&s.as_ptr())));
        assert_eq!(a.to_vecs(), v(&[b"SET", b"k", b"hello"]));
        assert_eq!(p.needed(), 1);
        assert!(!p.in_progress());
    }

    #[test]
    fn binary_payload_with_nul_and_crlf() {
        assert_eq!(
            one(b"*2\r\n$4\r\nECHO\r\n$5\r\na\0\r\nb\r\n"),
            v(&[b"ECHO", b"a\0\r\nb"])
        );
        assert_eq!(one(b"*1\r\n$0\r\n\r\n"), v(&[b""]));
    }

    #[test]
    fn crlf_bytes_are_not_checked() {
        // Redis skips the two bytes after a payload and the byte after '\r'.
        assert_eq!(one(b"*1\r\n$4\r\nPINGxx"), v(&[b"PING"]));
        assert_eq!(one(b"*1\rX$4\rYPINGab"), v(&[b"PING"]));
        let (reqs, err, _) = parse_all(
            b"*2\r\n$4\r\nECHO\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n",
            lim(),
        );
        assert_eq!(err, None);
        assert_eq!(reqs, vec![v(&[b"ECHO", b"abc"]), v(&[b"PING"])]);
    }

    #[test]
    fn empty_requests() {
        for input in [
            &b"\r\n"[..],
            b"\n",
            b"   \r\n",
            b"\t \x0b\x0c\r\n",
            b"*0\r\n",
            b"*-1\r\n",
            b"*-5\r\n",
            b"*-9223372036854775808\r\n",
        ] {
            let mut p = Parser::new(lim());
            assert_eq!(p.parse(input), Ok(Some(input.len())), "{input:?}");
            assert!(p.args(input).is_empty());
        }
    }

    #[test]
    fn mixed_pipeline_as_redis() {
        // Matches redis-server: two PONGs; the empty requests are skipped.
        let input = b"*1\r\n$4\r\nPING\r\n*-1\r\n*0\r\nPING\r\n\r\n\n";
        let (reqs, err, rest) = parse_all(input, lim());
        assert_eq!(err, None);
        assert_eq!(rest, 0);
        let non_empty: Vec<_> = reqs.into_iter().filter(|r| !r.is_empty()).collect();
        assert_eq!(non_empty, vec![v(&[b"PING"]), v(&[b"PING"])]);
        // Requests before a protocol error are returned first.
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n*1\r\nX\r\n";
        let (reqs, err, _) = parse_all(input, lim());
        assert_eq!(reqs, vec![v(&[b"SET", b"k", b"v"]), v(&[b"PING"])]);
        assert_eq!(err.unwrap(), "ERR Protocol error: expected '$', got 'X'");
    }

    #[test]
    fn inline_basic() {
        assert_eq!(one(b"PING\r\n"), v(&[b"PING"]));
        assert_eq!(one(b"PING\n"), v(&[b"PING"]));
        // "PING\r\r\n": the remaining '\r' is a separator.
        assert_eq!(one(b"PING\r\r\n"), v(&[b"PING"]));
        assert_eq!(one(b"SET  k   v\r\n"), v(&[b"SET", b"k", b"v"]));
        // A line starting with a space is inline even if '*' follows.
        assert_eq!(one(b" *1\r\n"), v(&[b"*1"]));
        // '\r' alone inside a line separates arguments.
        assert_eq!(one(b"ECHO x\rPING\n"), v(&[b"ECHO", b"x", b"PING"]));
    }

    /// Inline lines and the arguments redis-server 7.0.15 produced for them
    /// (observed with RPUSH + LRANGE); `None` = "unbalanced quotes".
    #[allow(clippy::type_complexity)]
    const INLINE_CASES: &[(&[u8], Option<&[&[u8]]>)] = &[
        (b"a b   c", Some(&[b"a", b"b", b"c"])),
        (br#""a\x41b""#, Some(&[b"aAb"])),
        (br#""a\x4g""#, Some(&[b"ax4g"])),
        (br#""a\x4""#, Some(&[b"ax4"])),
        (br#""\n\r\t\b\a\\\"\q""#, Some(&[b"\n\r\t\x08\x07\\\"q"])),
        (br"'a\'b'", Some(&[b"a'b"])),
        (br"'a\nb'", Some(&[br"a\nb"])),
        (br#"'a\"b'"#, Some(&[br#"a\"b"#])),
        (br#"a"b c"d"#, None),
        (br#"a"b c" d"#, Some(&[b"ab c", b"d"])),
        (br#""""#, Some(&[b""])),
        (b"''", Some(&[b""])),
        (br#""" """#, Some(&[b"", b""])),
        (br"a\x41", Some(&[br"a\x41"])),
        (b"a\x0bb", Some(&[b"a\x0bb"])),
        (b"a\x0cb", Some(&[b"a\x0cb"])),
        (b"\x0ca", Some(&[b"a"])),
        (b"\"a\"\x0bb", Some(&[b"a", b"b"])),
        (b"a'b'", Some(&[b"ab"])),
        (b"a'b c'", Some(&[b"ab c"])),
        (br#""a\xZZ""#, Some(&[b"axZZ"])),
        (br#""a\x41\x42""#, Some(&[b"aAB"])),
        (br#""\xff\xFF""#, Some(&[b"\xff\xff"])),
        (br#""ab\""#, None),
        (br#"x"\\"y"#, None),
        (b"a\tb", Some(&[b"a", b"b"])),
        (b"\"a\tb\"", Some(&[b"a\tb"])),
        (b"\"a\"\tb", Some(&[b"a", b"b"])),
        (br"'a\\'", None),
        (br"'a\\b'", Some(&[br"a\\b"])),
        (b"\"a\rb\"", Some(&[b"a\rb"])),
        (b"a\rb", Some(&[b"a", b"b"])),
        (b"\xc3\xa9 x", Some(&[b"\xc3\xa9", b"x"])),
        (br#""unterminated"#, None),
        (b"'unterminated", None),
        (br#""a"b"#, None),
        (b"'a'b", None),
        (br#""\""#, None),
        (b"\"a\\", None),
    ];

    #[test]
    fn inline_quoting_matches_redis() {
        for (line, expect) in INLINE_CASES {
            let mut input = b"RPUSH l ".to_vec();
            input.extend_from_slice(line);
            input.extend_from_slice(b"\r\n");
            let (reqs, err, _) = parse_all(&input, lim());
            match expect {
                Some(args) => {
                    assert_eq!(err, None, "{:?}", String::from_utf8_lossy(line));
                    let mut want = v(&[b"RPUSH", b"l"]);
                    want.extend(args.iter().map(|a| a.to_vec()));
                    assert_eq!(reqs, vec![want], "{:?}", String::from_utf8_lossy(line));
                }
                None => {
                    assert!(reqs.is_empty());
                    assert_eq!(
                        err.as_deref(),
                        Some("ERR Protocol error: unbalanced quotes in request"),
                        "{:?}",
                        String::from_utf8_lossy(line)
                    );
                }
            }
        }
    }

    #[test]
    fn inline_args_live_in_scratch_and_reuse_it() {
        let input = b"SET \"a b\" c\r\n";
        let mut p = Parser::new(lim());
        assert_eq!(p.parse(input), Ok(Some(input.len())));
        assert_eq!(p.args(input).to_vecs(), v(&[b"SET", b"a b", b"c"]));
        assert_eq!(p.args(&[]).to_vecs(), v(&[b"SET", b"a b", b"c"]));
        let cap = p.scratch.capacity();
        for _ in 0..100 {
            assert_eq!(p.parse(input), Ok(Some(input.len())));
        }
        assert_eq!(cap, p.scratch.capacity());
    }

    #[test]
    fn protocol_errors_match_redis() {
        let cases: &[(&[u8], &str)] = &[
            (b"*2147483648\r\n", "invalid multibulk length"),
            (b"*-0\r\n", "invalid multibulk length"),
            (b"*01\r\n", "invalid multibulk length"),
            (b"*+1\r\n", "invalid multibulk length"),
            (b"*\r\n", "invalid multibulk length"),
            (b"*1x\r\n", "invalid multibulk length"),
            (b"*1 \r\n", "invalid multibulk length"),
            (b"*99999999999999999999\r\n", "invalid multibulk length"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$536870913\r\n", "invalid bulk length"),
            (b"*1\r\n$4 \r\nPING\r\n", "invalid bulk length"),
            (b"*1\r\n$04\r\nPING\r\n", "invalid bulk length"),
            (b"*1\r\n$-0\r\nPING\r\n", "invalid bulk length"),
            (b"*1\r\n$+4\r\nPING\r\n", "invalid bulk length"),
            (b"*1\r\n$\r\n", "invalid bulk length"),
            (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
            (b"*1\r\n$9223372036854775807\r\n", "invalid bulk length"),
            (b"*1\r\n$3foo\r\n", "invalid bulk length"),
            (b"*1\r\nX\r\n", "expected '$', got 'X'"),
            (b"*1\r\n\r\n", "expected '$', got ' '"),
            (b"*1\r\n\n\r\n", "expected '$', got ' '"),
            (b"*2\r\n$1\r\na\r\n:1\r\n", "expected '$', got ':'"),
            (b"ECHO \"abc\r\n", "unbalanced quotes in request"),
        ];
        for (input, msg) in cases {
            assert_eq!(
                err_of(input),
                format!("ERR Protocol error: {msg}"),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn expected_dollar_non_utf8_byte() {
        let mut p = Parser::new(lim());
        let e = p.parse(b"*1\r\n\xff\r\n").unwrap_err();
        assert_eq!(e.kind(), ProtocolErrorKind::ExpectedDollar(0xff));
        assert_eq!(
            e.as_bytes(),
            b"ERR Protocol error: expected '$', got '\xff'"
        );
        assert_eq!(
            e.message(),
            "ERR Protocol error: expected '$', got '\u{fffd}'"
        );
        assert_eq!(e.to_string(), e.message());
        // The parser is usable again after an error.
        assert_eq!(p.parse(b"PING\r\n"), Ok(Some(6)));
    }

    #[test]
    fn huge_declared_lengths_wait() {
        let mut p = Parser::new(lim());
        // Largest accepted count: waits for arguments, allocates little.
        assert_eq!(p.parse(b"*2147483647\r\n"), Ok(None));
        assert!(p.spans.capacity() <= 4096);
        assert_eq!(p.needed(), 14);
        p.reset();
        // Counts above the old 1M limit are fine in Redis 7.0.
        assert_eq!(p.parse(b"*1048577\r\n"), Ok(None));
        p.reset();
        let input = b"*1\r\n$536870912\r\n";
        assert_eq!(p.parse(input), Ok(None));
        assert_eq!(p.needed(), input.len() + 536870912 + 2);
    }

    #[test]
    fn custom_limits() {
        let limits = Limits {
            proto_max_bulk_len: 10,
            max_multibulk_len: 3,
            inline_max: 16,
        };
        let e = |i: &[u8]| parse_all(i, limits.clone()).1.unwrap();
        assert_eq!(e(b"*4\r\n"), "ERR Protocol error: invalid multibulk length");
        assert_eq!(
            e(b"*1\r\n$11\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(e(&[b'A'; 17]), "ERR Protocol error: too big inline request");
        assert_eq!(parse_all(&[b'A'; 16], limits.clone()).1, None);
        let (reqs, err, _) = parse_all(b"*3\r\n$10\r\n0123456789\r\n$0\r\n\r\n$1\r\nx\r\n", limits);
        assert_eq!(err, None);
        assert_eq!(reqs, vec![v(&[b"0123456789", b"", b"x"])]);
        // set_limits applies to a frame in progress.
        let mut p = Parser::new(Limits::default());
        assert_eq!(p.parse(b"*1\r\n"), Ok(None));
        p.set_limits(Limits {
            proto_max_bulk_len: 2,
            ..Limits::default()
        });
        assert_eq!(p.limits().proto_max_bulk_len, 2);
        assert_eq!(
            p.parse(b"*1\r\n$3\r\nabc\r\n").unwrap_err().kind(),
            ProtocolErrorKind::InvalidBulkLength
        );
    }

    #[test]
    fn unauthenticated_limits() {
        // Observed with redis-server --requirepass.
        let mut p = Parser::new(lim());
        p.set_auth_required(true);
        assert_eq!(p.parse(b"*10\r\n"), Ok(None));
        p.reset();
        assert_eq!(
            p.parse(b"*11\r\n").unwrap_err().message(),
            "ERR Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            p.parse(b"*99999999999\r\n").unwrap_err().kind(),
            ProtocolErrorKind::InvalidMultibulkLength
        );
        assert_eq!(p.parse(b"*1\r\n$16384\r\n"), Ok(None));
        p.reset();
        assert_eq!(
            p.parse(b"*1\r\n$16385\r\n").unwrap_err().message(),
            "ERR Protocol error: unauthenticated bulk length"
        );
        // Inline requests are not capped.
        let mut long = b"AUTH ".to_vec();
        long.resize(40000, b'p');
        long.extend_from_slice(b"\r\n");
        assert_eq!(p.parse(&long), Ok(Some(long.len())));
        p.set_auth_required(false);
        assert_eq!(p.parse(b"*11\r\n"), Ok(None));
    }

    #[test]
    fn shrunken_input_restarts_frame() {
        let mut p = Parser::new(lim());
        assert_eq!(p.parse(b"*1\r\n$3\r\nab"), Ok(None));
        assert_eq!(p.parse(b"*1\r"), Ok(None));
        assert_eq!(p.parse(b"*"), Ok(None));
        assert_eq!(p.parse(b"*1\r\n$4\r\nPING\r\n"), Ok(Some(14)));
        assert_eq!(p.parse(b"PIN"), Ok(None));
        assert_eq!(p.parse(b"P"), Ok(None));
        assert_eq!(p.parse(b"PING\n"), Ok(Some(5)));
    }

    #[test]
    fn frames_past_4gib_are_rejected() {
        let limits = Limits {
            proto_max_bulk_len: usize::MAX,
            ..Limits::default()
        };
        let mut p = Parser::new(limits);
        assert_eq!(p.parse(b"*1\r\n$4294967000\r\n"), Ok(None));
        p.reset();
        let e = p.parse(b"*1\r\n$4294967290\r\n").unwrap_err();
        assert_eq!(e.kind(), ProtocolErrorKind::InvalidBulkLength);
    }

    #[test]
    fn too_big_unterminated_lines() {
        let max = DEFAULT_INLINE_MAX;
        // Inline: more than 64 KiB without '\n'.
        let mut p = Parser::new(lim());
        assert_eq!(p.parse(&vec![b'A'; max]), Ok(None));
        assert_eq!(
            p.parse(&vec![b'A'; max + 1]).unwrap_err().message(),
            "ERR Protocol error: too big inline request"
        );
        // A long line whose newline is already there is accepted (as Redis).
        let mut long = b"ECHO ".to_vec();
        long.extend(std::iter::repeat_n(b'A', max * 2));
        long.extend_from_slice(b"\r\n");
        assert_eq!(one(&long)[1].len(), max * 2);
        // Multibulk count line.
        let mut input = b"*".to_vec();
        input.extend(std::iter::repeat_n(b'1', max - 1));
        assert_eq!(parse_all(&input, lim()).1, None);
        input.push(b'1');
        assert_eq!(
            parse_all(&input, lim()).1.unwrap(),
            "ERR Protocol error: too big mbulk count string"
        );
        // Bulk count line: counted from the start of the '$' line.
        let mut input = b"*1\r\n$".to_vec();
        input.extend(std::iter::repeat_n(b'1', max - 1));
        assert_eq!(parse_all(&input, lim()).1, None);
        input.push(b'1');
        assert_eq!(
            parse_all(&input, lim()).1.unwrap(),
            "ERR Protocol error: too big bulk count string"
        );
        // Pipelined requests before the oversized one still come out.
        let mut input = b"PING\r\nPING\r\nPING\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'A', 70000));
        let (reqs, err, _) = parse_all(&input, lim());
        assert_eq!(reqs.len(), 3);
        assert_eq!(err.unwrap(), "ERR Protocol error: too big inline request");
    }

    #[test]
    fn too_big_grows_incrementally() {
        // Byte-at-a-time growth of an unterminated inline line errors exactly
        // once the pending bytes exceed the limit.
        let limits = Limits {
            inline_max: 100,
            ..Limits::default()
        };
        let mut p = Parser::new(limits);
        let buf = vec![b'x'; 101];
        for n in 1..=100 {
            assert_eq!(p.parse(&buf[..n]), Ok(None));
            assert_eq!(p.needed(), n + 1);
        }
        assert_eq!(
            p.parse(&buf).unwrap_err().kind(),
            ProtocolErrorKind::TooBigInline
        );
    }

    #[test]
    fn nul_before_terminator_stalls_like_redis() {
        // Redis looks for line ends with strchr, which stops at NUL.
        for (input, kind) in [
            (&b"PING\0\r\n"[..], ProtocolErrorKind::TooBigInline),
            (b"\0PING\r\n", ProtocolErrorKind::TooBigInline),
            (
                b"*1\0\r\n$4\r\nPING\r\n",
                ProtocolErrorKind::TooBigMbulkCount,
            ),
            (
                b"*1\r\n$4\0\r\nPING\r\n",
                ProtocolErrorKind::TooBigBulkCount,
            ),
        ] {
            let mut p = Parser::new(lim());
            assert_eq!(p.parse(input), Ok(None));
            let start = if input[0] == b'*' && input[2] != 0 {
                4
            } else {
                0
            };
            assert_eq!(p.needed(), start + DEFAULT_INLINE_MAX + 1);
            let mut grown = input.to_vec();
            grown.resize(start + DEFAULT_INLINE_MAX, b'\n');
            assert_eq!(p.parse(&grown), Ok(None));
            grown.push(b'\n');
            assert_eq!(p.parse(&grown).unwrap_err().kind(), kind);
        }
        // A NUL after a complete request does not affect it.
        let (reqs, err, rest) = parse_all(b"*1\r\n$4\r\nPING\r\n\0", lim());
        assert_eq!((reqs, err, rest), (vec![v(&[b"PING"])], None, 1));
    }

    fn mixed_pipeline() -> Vec<u8> {
        let mut input = Vec::new();
        input.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n");
        input.extend_from_slice(b"GET key\r\n");
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(b"*0\r\n");
        input.extend_from_slice(b"ECHO \"a\\x41 \\\"q\\\"\" 'b c'\n");
        input.extend_from_slice(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
        input.extend_from_slice(b"*-1\r\n");
        input.extend_from_slice(b"   \r\n");
        input.extend_from_slice(b"*1\r\n$4\r\nPINGxx");
        input.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$11\r\n\0\r\n\n$*\"'x\r\n\r\n");
        input.extend_from_slice(b"PING\r\r\n");
        input.extend_from_slice(b"*1\r\n$1\r\n*\r\n");
        input
    }

    #[test]
    fn every_split_point_matches_whole_parse() {
        let input = mixed_pipeline();
        let (whole, err, rest) = parse_all(&input, lim());
        assert_eq!(err, None);
        assert_eq!(rest, 0);
        assert_eq!(whole.len(), 12);
        assert_eq!(whole[4], v(&[b"ECHO", b"aA \"q\"", b"b c"]));
        assert_eq!(whole[9], v(&[b"GET", b"\0\r\n\n$*\"'x\r\n"]));
        for k in 0..=input.len() {
            let (got, err) = parse_chunked(&input, &[k], lim());
            assert_eq!(err, None, "split at {k}");
            assert_eq!(got, whole, "split at {k}");
        }
        for k in 0..=input.len() {
            for j in k..=input.len().min(k + 9) {
                let (got, err) = parse_chunked(&input, &[k, j], lim());
                assert_eq!(err, None, "split at {k},{j}");
                assert_eq!(got, whole, "split at {k},{j}");
            }
        }
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(parse_chunked(&input, &cuts, lim()), (whole, None));
    }

    #[test]
    fn random_chunking_with_errors() {
        // Deterministic xorshift; every chunking gives the same requests and
        // the same error.
        let mut input = mixed_pipeline();
        input.extend_from_slice(b"*2\r\n$1\r\na\r\n#\r\n");
        let (whole, err, _) = parse_all(&input, lim());
        assert_eq!(
            err.as_deref(),
            Some("ERR Protocol error: expected '$', got '#'")
        );
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..300 {
            let mut cuts = Vec::new();
            let mut at = 0;
            loop {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                at += 1 + (x % 12) as usize;
                if at >= input.len() {
                    break;
                }
                cuts.push(at);
            }
            assert_eq!(
                parse_chunked(&input, &cuts, lim()),
                (whole.clone(), err.clone())
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 12345;
        let alphabet = b"*$\r\n0123-+ \"'\\xab\0";
        for round in 0..3000 {
            let len = round % 40;
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                input.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let (whole, err, _) = parse_all(&input, lim());
            let cuts: Vec<usize> = (1..input.len()).step_by(3).collect();
            let (chunked, cerr) = parse_chunked(&input, &cuts, lim());
            assert_eq!(chunked, whole, "{input:?}");
            assert_eq!(cerr, err, "{input:?}");
        }
    }

    #[test]
    fn big_bulk_in_small_reads_is_not_rescanned() {
        let size = 10 * 1024 * 1024;
        let mut input = format!("*2\r\n$3\r\nSET\r\n${size}\r\n").into_bytes();
        let header = input.len();
        input.resize(header + size, b'v');
        input.extend_from_slice(b"\r\n");
        let mut p = Parser::new(lim());
        let mut have = 4096;
        let mut calls = 0;
        loop {
            calls += 1;
            match p.parse(&input[..have]).unwrap() {
                Some(n) => {
                    assert_eq!(n, input.len());
                    break;
                }
                None => {
                    // After the header the hint is the whole frame length:
                    // the caller need not call again until then.
                    assert_eq!(p.needed(), input.len());
                    assert_eq!(p.pos, header);
                    have = (have + 65536).min(input.len());
                }
            }
        }
        assert!(calls > 100);
        let a = p.args(&input);
        assert_eq!(a.get(0), b"SET");
        assert_eq!(a.get(1).len(), size);
    }

    #[test]
    fn million_args_in_pieces_resume() {
        let n = 1_000_000;
        let mut input = format!("*{n}\r\n").into_bytes();
        for i in 0..n {
            let s = (i % 10).to_string();
            input.extend_from_slice(b"$1\r\n");
            input.extend_from_slice(s.as_bytes());
            input.extend_from_slice(b"\r\n");
        }
        let mut p = Parser::new(lim());
        let mut have = 0;
        let mut last_spans = 0;
        let consumed = loop {
            have = (have + 4096).min(input.len());
            match p.parse(&input[..have]).unwrap() {
                Some(c) => break c,
                None => {
                    // Progress is kept: spans only grow, pos only advances.
                    assert!(p.spans.len() >= last_spans);
                    last_spans = p.spans.len();
                    assert!(p.pos + 7 > have);
                }
            }
        };
        assert_eq!(consumed, input.len());
        let a = p.args(&input);
        assert_eq!(a.len(), n);
        assert_eq!(a.get(123_457), b"7");
    }

    #[test]
    fn steady_state_reuses_spans() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let mut p = Parser::new(lim());
        assert_eq!(p.parse(input), Ok(Some(input.len())));
        let (cap, ptr) = (p.spans.capacity(), p.spans.as_ptr());
        for _ in 0..1000 {
            assert_eq!(p.parse(input), Ok(Some(input.len())));
            assert_eq!(p.parse(b"GET k\r\n"), Ok(Some(7)));
        }
        assert_eq!((cap, ptr), (p.spans.capacity(), p.spans.as_ptr()));
    }

    #[test]
    fn reset_discards_partial_frame() {
        let mut p = Parser::new(lim());
        assert_eq!(p.parse(b"*2\r\n$3\r\nGET\r\n"), Ok(None));
        assert!(p.in_progress());
        p.reset();
        assert!(!p.in_progress());
        assert_eq!(p.needed(), 1);
        assert_eq!(p.parse(b""), Ok(None));
        assert_eq!(p.parse(b"PING\r\n"), Ok(Some(6)));
        assert_eq!(p.args(b"PING\r\n").to_vecs(), v(&[b"PING"]));
    }

    #[test]
    fn needed_hints() {
        let mut p = Parser::new(lim());
        assert_eq!(p.parse(b"*1"), Ok(None));
        assert_eq!(p.needed(), 3);
        assert_eq!(p.parse(b"*1\r"), Ok(None));
        assert_eq!(p.needed(), 4);
        assert_eq!(p.parse(b"*1\r\n$5\r\nab"), Ok(None));
        assert_eq!(p.needed(), 8 + 5 + 2);
        assert_eq!(p.parse(b"*1\r\n$5\r\nabcde\r"), Ok(None));
        assert_eq!(p.needed(), 15);
        assert_eq!(p.parse(b"*1\r\n$5\r\nabcde\r\n"), Ok(Some(15)));
    }

    #[test]
    fn owned_args_round_trip() {
        let input = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\nv\0v\r\n";
        let mut p = Parser::new(lim());
        p.parse(input).unwrap().unwrap();
        let owned = OwnedArgs::from_args(&p.args(input));
        assert_eq!(owned.data, b"SETv\0v");
        assert_eq!(owned.spans, vec![(0, 3), (3, 0), (3, 3)]);
        assert_eq!(owned.view().to_vecs(), v(&[b"SET", b"", b"v\0v"]));
        let mut o2 = OwnedArgs::from_slices(&[b"SET", b""]);
        o2.push(b"v\0v");
        assert_eq!(o2, owned);
        assert_eq!(format!("{:?}", o2.view()), r#"["SET", "", "v\0v"]"#);
        let empty = OwnedArgs::default();
        assert!(empty.view().is_empty());
        assert_eq!(empty.view().iter().count(), 0);
        let spans = [(1u32, 2u32)];
        assert_eq!(Args::from_parts(b"xabx", &spans).get(0), b"ab");
    }
}
