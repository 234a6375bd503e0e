//! The Redis wire protocol (RESP).
//!
//! * [`parse`]: the resumable request parser (multibulk and inline requests,
//!   with Redis 7.0's exact limits, quirks and error messages).
//! * [`lookahead`]: a cheap scan of the complete frames waiting in the input, for the
//!   keys the table should prefetch.
//! * [`reply`]: the RESP2 / RESP3 reply writer and the number formatting and
//!   parsing helpers that must match Redis byte for byte.

pub mod lookahead;
pub mod parse;
pub mod reply;

pub use parse::{
    Args, Limits, OwnedArgs, Parser, ProtocolError, ProtocolErrorKind, DEFAULT_INLINE_MAX,
    DEFAULT_MAX_MULTIBULK_LEN, DEFAULT_PROTO_MAX_BULK_LEN,
};
pub use reply::{format_double_g17, format_double_human, parse_double, parse_i64, ReplyWriter};
