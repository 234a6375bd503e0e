//! Values stored in the keyspace and their encodings.
//!
//! Strings follow Redis's three encodings so that `OBJECT ENCODING` answers the same:
//! integers that round-trip through `i64` are stored as [`Value::Int`], strings created whole
//! (SET, GETSET...) as [`Value::Str`] (reported `embstr` up to 44 bytes, `raw` above), and
//! strings grown in place (APPEND, SETRANGE) as [`Value::Raw`], a growable buffer.
//! Hashes are [`Value::Hash`], in the "listpack" or "hashtable" encoding (see
//! [`super::hash`]). Lists are [`Value::List`] (see [`super::list`]). Sets are
//! [`Value::Set`], in the "intset" or "hashtable" encoding (see [`super::set`]). Sorted
//! sets are [`Value::ZSet`], "listpack" or "skiplist" (see [`super::zset`]).

use super::hash::Hash;
use super::list::List;
use super::set::Set;
use super::stream::Stream;
use super::zset::ZSet;
use crate::protocol::reply::parse_i64;

/// Longest string Redis stores with the `embstr` encoding.
pub const EMBSTR_MAX: usize = 44;

/// Longest string stored inside the value itself (no heap block: a GET of a short value
/// then reads only the table entry).
pub const SMALL_MAX: usize = 22;

/// A stored value. The data types issue adds the other collection variants.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string holding a canonical decimal integer (`OBJECT ENCODING` "int").
    Int(i64),
    /// A short string created whole, stored in place ("embstr").
    Small {
        /// Length in bytes.
        len: u8,
        /// Bytes; only `len` are meaningful.
        data: [u8; SMALL_MAX],
    },
    /// A string created whole ("embstr" up to 44 bytes, "raw" above).
    Str(Box<[u8]>),
    /// A string modified in place; keeps spare capacity for appends ("raw").
    Raw(Vec<u8>),
    /// A hash ("listpack" or "hashtable"). Not boxed: a [`Hash`] is 16 bytes (a packed
    /// buffer or a table pointer), so a small hash costs one allocation.
    Hash(Hash),
    /// A set ("intset" or "hashtable"), boxed for the same reason.
    Set(Box<Set>),
    /// A sorted set ("listpack" or "skiplist"), boxed like hashes.
    ZSet(Box<ZSet>),
    /// A list ("quicklist", see [`super::list`]). Boxed like hashes.
    List(Box<List>),
    /// A stream ("stream", see [`super::stream`]). Boxed like hashes.
    Stream(Box<Stream>),
}

/// The type of a value as `TYPE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// `string`
    String,
    /// `hash`
    Hash,
    /// `set`
    Set,
    /// `zset`
    ZSet,
    /// `list`
    List,
    /// `stream`
    Stream,
}

impl ValueType {
    /// The name `TYPE` and `SCAN ... TYPE` use.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::List => "list",
            ValueType::Stream => "stream",
        }
    }
}

impl Value {
    /// Builds a string value the way Redis's `tryObjectEncoding` would: integers that
    /// round-trip become [`Value::Int`].
    pub fn from_bytes(bytes: &[u8]) -> Value {
        if bytes.len() <= 20 {
            if let Some(v) = parse_i64(bytes) {
                return Value::Int(v);
            }
        }
        Value::from_str_bytes(bytes)
    }

    /// A string value holding exactly `bytes` (never int-encoded), short ones in place.
    #[inline]
    pub fn from_str_bytes(bytes: &[u8]) -> Value {
        if bytes.len() <= SMALL_MAX {
            let mut data = [0u8; SMALL_MAX];
            data[..bytes.len()].copy_from_slice(bytes);
            Value::Small {
                len: bytes.len() as u8,
                data,
            }
        } else {
            Value::Str(bytes.into())
        }
    }

    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Int(_) | Value::Small { .. } | Value::Str(_) | Value::Raw(_) => {
                ValueType::String
            }
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::List(_) => ValueType::List,
            Value::Stream(_) => ValueType::Stream,
        }
    }

    /// The encoding name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Small { .. } => "embstr",
            Value::Str(b) if b.len() <= EMBSTR_MAX => "embstr",
            Value::Str(_) | Value::Raw(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::List(l) => l.encoding(),
            Value::Stream(s) => s.encoding(),
        }
    }

    /// True for the string encodings.
    pub fn is_string(&self) -> bool {
        matches!(
            self,
            Value::Int(_) | Value::Small { .. } | Value::Str(_) | Value::Raw(_)
        )
    }

    /// Calls `f` with the string bytes (integers are formatted on the stack).
    /// Returns `None` when the value is not a string.
    pub fn with_str<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match self {
            Value::Int(v) => {
                let mut buf = itoa::Buffer::new();
                Some(f(buf.format(*v).as_bytes()))
            }
            Value::Small { len, data } => Some(f(&data[..*len as usize])),
            Value::Str(b) => Some(f(b)),
            Value::Raw(b) => Some(f(b)),
            Value::Hash(_) | Value::List(_) | Value::Set(_) | Value::ZSet(_) | Value::Stream(_) => {
                None
            }
        }
    }

    /// Length of the string form, or `None` for non-strings.
    pub fn str_len(&self) -> Option<usize> {
        match self {
            Value::Int(v) => Some(itoa::Buffer::new().format(*v).len()),
            Value::Small { len, .. } => Some(*len as usize),
            Value::Str(b) => Some(b.len()),
            Value::Raw(b) => Some(b.len()),
            Value::Hash(_) | Value::List(_) | Value::Set(_) | Value::ZSet(_) | Value::Stream(_) => {
                None
            }
        }
    }

    /// Converts a string value into the growable raw form and returns its buffer.
    /// Returns `None` for non-strings.
    pub fn make_raw(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Value::Int(v) => {
                *self = Value::Raw(itoa::Buffer::new().format(*v).as_bytes().to_vec());
            }
            Value::Small { len, data } => {
                *self = Value::Raw(data[..*len as usize].to_vec());
            }
            Value::Str(b) => {
                let v = std::mem::take(b).into_vec();
                *self = Value::Raw(v);
            }
            Value::Raw(_) => {}
            Value::Hash(_) | Value::List(_) | Value::Set(_) | Value::ZSet(_) | Value::Stream(_) => {
                return None
            }
        }
        match self {
            Value::Raw(v) => Some(v),
            _ => None,
        }
    }

    /// Approximate heap bytes used by this value (for MEMORY USAGE and accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Int(_) | Value::Small { .. } => 0,
            Value::Str(b) => b.len(),
            Value::Raw(v) => v.capacity(),
            Value::Hash(h) => h.heap_size(),
            Value::Set(s) => std::mem::size_of::<Set>() + s.heap_size(),
            Value::ZSet(z) => std::mem::size_of::<ZSet>() + z.heap_size(),
            Value::List(l) => std::mem::size_of::<List>() + l.heap_size(),
            Value::Stream(s) => std::mem::size_of::<Stream>() + s.heap_size(),
        }
    }

    /// The hash, or `None` when the value is not a hash.
    #[inline]
    pub fn as_hash(&self) -> Option<&Hash> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    /// The hash, mutably, or `None` when the value is not a hash.
    #[inline]
    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    /// Wraps a hash.
    pub fn from_hash(h: Hash) -> Value {
        Value::Hash(h)
    }

    /// The set, or `None` when the value is not a set.
    #[inline]
    pub fn as_set(&self) -> Option<&Set> {
        match self {
            Value::Set(s) => Some(&**s),
            _ => None,
        }
    }

    /// The list, or `None` when the value is not a list.
    #[inline]
    pub fn as_list(&self) -> Option<&List> {
        match self {
            Value::List(l) => Some(&**l),
            _ => None,
        }
    }

    /// The sorted set, or `None` when the value is not a sorted set.
    #[inline]
    pub fn as_zset(&self) -> Option<&ZSet> {
        match self {
            Value::ZSet(z) => Some(&**z),
            _ => None,
        }
    }

    /// The list, mutably, or `None` when the value is not a list.
    #[inline]
    pub fn as_list_mut(&mut self) -> Option<&mut List> {
        match self {
            Value::List(l) => Some(&mut **l),
            _ => None,
        }
    }

    /// The set, mutably, or `None` when the value is not a set.
    #[inline]
    pub fn as_set_mut(&mut self) -> Option<&mut Set> {
        match self {
            Value::Set(s) => Some(&mut **s),
            _ => None,
        }
    }

    /// The sorted set, mutably, or `None` when the value is not a sorted set.
    #[inline]
    pub fn as_zset_mut(&mut self) -> Option<&mut ZSet> {
        match self {
            Value::ZSet(z) => Some(&mut **z),
            _ => None,
        }
    }

    /// Wraps a set.
    pub fn from_set(s: Set) -> Value {
        Value::Set(Box::new(s))
    }

    /// Wraps a sorted set.
    pub fn from_zset(z: ZSet) -> Value {
        Value::ZSet(Box::new(z))
    }

    /// The stream, or `None` when the value is not a stream.
    #[inline]
    pub fn as_stream(&self) -> Option<&Stream> {
        match self {
            Value::Stream(s) => Some(&**s),
            _ => None,
        }
    }

    /// The stream, mutably, or `None` when the value is not a stream.
    #[inline]
    pub fn as_stream_mut(&mut self) -> Option<&mut Stream> {
        match self {
            Value::Stream(s) => Some(&mut **s),
            _ => None,
        }
    }

    /// Wraps a stream.
    pub fn from_stream(s: Stream) -> Value {
        Value::Stream(Box::new(s))
    }

    /// Wraps a list.
    pub fn from_list(l: List) -> Value {
        Value::List(Box::new(l))
    }
}

/// A stored value seen through its entry: inline strings and integers by value or slice
/// (see [`super::entry`]), everything else by reference to its [`Value`]. Strings held
/// in a boxed [`Value`] (the growable raw form) read as [`ValueRef::Str`] too.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    /// An integer-encoded string.
    Int(i64),
    /// A string's bytes.
    Str(&'a [u8]),
    /// A hash (kept in its entry's block without a [`Value`] around it).
    Hash(&'a Hash),
    /// Any other type (never a string or a hash).
    Boxed(&'a Value),
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    #[inline]
    fn from(v: &'a Value) -> ValueRef<'a> {
        match v {
            Value::Int(i) => ValueRef::Int(*i),
            Value::Small { len, data } => ValueRef::Str(&data[..*len as usize]),
            Value::Str(b) => ValueRef::Str(b),
            Value::Raw(b) => ValueRef::Str(b),
            Value::Hash(h) => ValueRef::Hash(h),
            other => ValueRef::Boxed(other),
        }
    }
}

impl<'a> ValueRef<'a> {
    /// The value's type.
    pub fn value_type(self) -> ValueType {
        match self {
            ValueRef::Int(_) | ValueRef::Str(_) => ValueType::String,
            ValueRef::Hash(_) => ValueType::Hash,
            ValueRef::Boxed(v) => v.value_type(),
        }
    }

    /// The encoding name `OBJECT ENCODING` reports.
    pub fn encoding(self) -> &'static str {
        match self {
            ValueRef::Int(_) => "int",
            ValueRef::Str(b) if b.len() <= EMBSTR_MAX => "embstr",
            ValueRef::Str(_) => "raw",
            ValueRef::Hash(h) => h.encoding(),
            ValueRef::Boxed(v) => v.encoding(),
        }
    }

    /// True for strings.
    #[inline]
    pub fn is_string(self) -> bool {
        matches!(self, ValueRef::Int(_) | ValueRef::Str(_))
    }

    /// Calls `f` with the string bytes (integers are formatted on the stack).
    /// Returns `None` when the value is not a string.
    #[inline]
    pub fn with_str<R>(self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match self {
            ValueRef::Int(v) => {
                let mut buf = itoa::Buffer::new();
                Some(f(buf.format(v).as_bytes()))
            }
            ValueRef::Str(b) => Some(f(b)),
            ValueRef::Hash(_) | ValueRef::Boxed(_) => None,
        }
    }

    /// Length of the string form, or `None` for non-strings.
    pub fn str_len(self) -> Option<usize> {
        match self {
            ValueRef::Int(v) => Some(itoa::Buffer::new().format(v).len()),
            ValueRef::Str(b) => Some(b.len()),
            ValueRef::Hash(_) | ValueRef::Boxed(_) => None,
        }
    }

    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Int(v) => Value::Int(v),
            ValueRef::Str(b) => Value::from_str_bytes(b),
            ValueRef::Hash(h) => Value::Hash(h.clone()),
            ValueRef::Boxed(v) => v.clone(),
        }
    }

    /// The hash, or `None` when the value is not a hash.
    #[inline]
    pub fn as_hash(self) -> Option<&'a Hash> {
        match self {
            ValueRef::Hash(h) => Some(h),
            _ => None,
        }
    }

    /// The set, or `None` when the value is not a set.
    #[inline]
    pub fn as_set(self) -> Option<&'a Set> {
        match self {
            ValueRef::Boxed(v) => v.as_set(),
            _ => None,
        }
    }

    /// The sorted set, or `None` when the value is not a sorted set.
    #[inline]
    pub fn as_zset(self) -> Option<&'a ZSet> {
        match self {
            ValueRef::Boxed(v) => v.as_zset(),
            _ => None,
        }
    }

    /// The list, or `None` when the value is not a list.
    #[inline]
    pub fn as_list(self) -> Option<&'a List> {
        match self {
            ValueRef::Boxed(v) => v.as_list(),
            _ => None,
        }
    }

    /// The stream, or `None` when the value is not a stream.
    #[inline]
    pub fn as_stream(self) -> Option<&'a Stream> {
        match self {
            ValueRef::Boxed(v) => v.as_stream(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_stays_small() {
        assert!(std::mem::size_of::<Value>() <= 32);
    }

    #[test]
    fn short_strings_are_inline_and_report_embstr() {
        for len in [0usize, 1, 22, 23, 44, 45] {
            let bytes = vec![b'x'; len];
            let v = Value::from_bytes(&bytes);
            assert_eq!(v.with_str(|b| b.to_vec()), Some(bytes.clone()));
            assert_eq!(v.str_len(), Some(len));
            assert_eq!(matches!(v, Value::Small { .. }), len <= SMALL_MAX);
            assert_eq!(
                v.encoding(),
                if len <= EMBSTR_MAX { "embstr" } else { "raw" }
            );
            let mut r = v.clone();
            assert_eq!(r.make_raw().map(|b| b.clone()), Some(bytes));
        }
    }
}
