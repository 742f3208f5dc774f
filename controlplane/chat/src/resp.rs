//! RESP2, the Redis wire protocol, sans-IO: commands out as bytes, replies parsed from
//! a buffer (incrementally: `Ok(None)` until a whole reply is there). Bounded: bulk
//! strings up to [`MAX_BULK`], arrays up to [`MAX_ARRAY`] elements and [`MAX_DEPTH`]
//! levels.

/// Largest bulk string accepted (bytes).
pub const MAX_BULK: usize = 16 * 1024 * 1024;
/// Most elements of one array.
pub const MAX_ARRAY: usize = 1 << 20;
/// Deepest nesting.
pub const MAX_DEPTH: usize = 8;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR …`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n` (None: the null bulk string)
    Bulk(Option<Vec<u8>>),
    /// `*n` (None: the null array)
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The integer, or a bulk/simple string holding one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::Simple(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

/// A malformed reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Redis reply: {0}")]
pub struct RespError(pub &'static str);

/// Encodes a command as an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

fn int(s: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError("bad integer"))
}

/// Parses one reply at the start of `buf`: the value and how many bytes it took, or
/// `None` when more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
    parse_at(buf, 0)
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(Value, usize)>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError("nested too deep"));
    }
    let Some((&kind, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let Some((head, used)) = line(rest) else {
        if rest.len() > 64 && kind != b'+' && kind != b'-' {
            return Err(RespError("header too long"));
        }
        return Ok(None);
    };
    let used = used + 1;
    let text = || String::from_utf8_lossy(head).into_owned();
    match kind {
        b'+' => Ok(Some((Value::Simple(text()), used))),
        b'-' => Ok(Some((Value::Error(text()), used))),
        b':' => Ok(Some((Value::Int(int(head)?), used))),
        b'$' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Value::Bulk(None), used)));
            }
            let n = usize::try_from(n).map_err(|_| RespError("bad length"))?;
            if n > MAX_BULK {
                return Err(RespError("bulk string too large"));
            }
            if buf.len() < used + n + 2 {
                return Ok(None);
            }
            if &buf[used + n..used + n + 2] != b"\r\n" {
                return Err(RespError("bulk string not terminated"));
            }
            Ok(Some((
                Value::Bulk(Some(buf[used..used + n].to_vec())),
                used + n + 2,
            )))
        }
        b'*' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Value::Array(None), used)));
            }
            let n = usize::try_from(n).map_err(|_| RespError("bad length"))?;
            if n > MAX_ARRAY {
                return Err(RespError("array too large"));
            }
            let mut items = Vec::with_capacity(n.min(1024));
            let mut at = used;
            for _ in 0..n {
                match parse_at(&buf[at..], depth + 1)? {
                    Some((v, k)) => {
                        items.push(v);
                        at += k;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(Some(items)), at)))
        }
        _ => Err(RespError("unknown type byte")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        assert_eq!(
            encode(&[b"SET", b"k", b"v v"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv v\r\n".to_vec()
        );
    }

    #[test]
    fn parses_replies_incrementally() {
        let full = b"*3\r\n$7\r\nmessage\r\n:42\r\n$-1\r\n+OK\r\n";
        for cut in 0..full.len() - 5 {
            assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let (v, used) = parse(full).expect("ok").expect("whole");
        assert_eq!(
            v,
            Value::Array(Some(vec![
                Value::Bulk(Some(b"message".to_vec())),
                Value::Int(42),
                Value::Bulk(None),
            ]))
        );
        assert_eq!(&full[used..], b"+OK\r\n");
        assert_eq!(
            parse(b"-ERR nope\r\n"),
            Ok(Some((Value::Error("ERR nope".into()), 11)))
        );
        assert_eq!(Value::Bulk(Some(b"17".to_vec())).as_int(), Some(17));
    }

    #[test]
    fn refuses_malformed_and_oversized() {
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":abc\r\n").is_err());
        assert!(parse(b"$99999999999\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err());
        let deep = "*1\r\n".repeat(20) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
    }
}
