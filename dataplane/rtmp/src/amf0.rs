//! AMF0 (Action Message Format 0): the value encoding of RTMP commands and data messages.
//!
//! The decoder is bounded: nesting is limited to [`MAX_DEPTH`], no allocation is sized
//! from a count field beyond what the remaining input could hold, and every read is
//! bounds-checked. Strings that are not valid UTF-8 are decoded lossily.

/// Deepest nesting of objects/arrays the decoder accepts.
pub const MAX_DEPTH: usize = 16;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const MOVIECLIP: u8 = 0x04;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;
const UNSUPPORTED: u8 = 0x0D;
const RECORDSET: u8 = 0x0E;
const XML_DOCUMENT: u8 = 0x0F;
const TYPED_OBJECT: u8 = 0x10;
const AVMPLUS: u8 = 0x11;

/// Errors decoding AMF0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    /// The input ended inside a value.
    #[error("truncated value")]
    Truncated,
    /// A type marker that AMF0 does not define.
    #[error("unknown type marker {0:#04x}")]
    UnknownMarker(u8),
    /// A defined marker we do not decode (reference, movieclip, recordset, AVM+ switch).
    #[error("unsupported type marker {0:#04x}")]
    UnsupportedMarker(u8),
    /// An object-end marker where a value was expected.
    #[error("unexpected object end")]
    UnexpectedObjectEnd,
    /// Objects or arrays nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// An IEEE-754 double.
    Number(f64),
    /// A boolean.
    Boolean(bool),
    /// A string (short and long strings and XML documents decode to this; encoding picks
    /// the long form above 65535 bytes).
    String(String),
    /// An anonymous (or typed, class name dropped) object: ordered properties.
    Object(Vec<(String, Amf0Value)>),
    /// `null`.
    Null,
    /// `undefined` (also what the "unsupported" marker decodes to).
    Undefined,
    /// An ECMA (associative) array: ordered properties.
    EcmaArray(Vec<(String, Amf0Value)>),
    /// A strict (dense) array.
    StrictArray(Vec<Amf0Value>),
    /// A date: milliseconds since the epoch and a (reserved) time zone.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time-zone field (should be 0).
        timezone: i16,
    },
}

impl Amf0Value {
    /// An object from `(key, value)` pairs.
    pub fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, Amf0Value)>) -> Self {
        Amf0Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Self {
        Amf0Value::String(s.into())
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an object or ECMA array.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// The first property named `key` of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Decodes one value from the front of `buf`, advancing it.
pub fn decode(buf: &mut &[u8]) -> Result<Amf0Value, Amf0Error> {
    decode_value(buf, 0)
}

/// Decodes values until `data` is exhausted.
pub fn decode_all(data: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut buf = data;
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(decode(&mut buf)?);
    }
    Ok(out)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], Amf0Error> {
    if buf.len() < n {
        return Err(Amf0Error::Truncated);
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Ok(a)
}

fn u8_(buf: &mut &[u8]) -> Result<u8, Amf0Error> {
    Ok(take(buf, 1)?[0])
}

fn u16_(buf: &mut &[u8]) -> Result<u16, Amf0Error> {
    let b = take(buf, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn u32_(buf: &mut &[u8]) -> Result<u32, Amf0Error> {
    let b = take(buf, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn f64_(buf: &mut &[u8]) -> Result<f64, Amf0Error> {
    let b = take(buf, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(f64::from_be_bytes(a))
}

fn short_string(buf: &mut &[u8]) -> Result<String, Amf0Error> {
    let len = usize::from(u16_(buf)?);
    Ok(String::from_utf8_lossy(take(buf, len)?).into_owned())
}

fn long_string(buf: &mut &[u8]) -> Result<String, Amf0Error> {
    let len = u32_(buf)? as usize;
    Ok(String::from_utf8_lossy(take(buf, len)?).into_owned())
}

/// Reads `key, value` pairs up to the `00 00 09` end marker. With `lenient_end`, the
/// input ending where a key would start also ends the list (some encoders omit the
/// marker after an ECMA array at the end of a message).
fn properties(
    buf: &mut &[u8],
    depth: usize,
    lenient_end: bool,
) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
    let mut props = Vec::new();
    loop {
        if lenient_end && buf.is_empty() {
            return Ok(props);
        }
        let key = short_string(buf)?;
        if key.is_empty() && buf.first() == Some(&OBJECT_END) {
            *buf = &buf[1..];
            return Ok(props);
        }
        let value = decode_value(buf, depth + 1)?;
        props.push((key, value));
    }
}

fn decode_value(buf: &mut &[u8], depth: usize) -> Result<Amf0Value, Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    let marker = u8_(buf)?;
    Ok(match marker {
        NUMBER => Amf0Value::Number(f64_(buf)?),
        BOOLEAN => Amf0Value::Boolean(u8_(buf)? != 0),
        STRING => Amf0Value::String(short_string(buf)?),
        OBJECT => Amf0Value::Object(properties(buf, depth, false)?),
        NULL => Amf0Value::Null,
        UNDEFINED | UNSUPPORTED => Amf0Value::Undefined,
        ECMA_ARRAY => {
            let _count_hint = u32_(buf)?;
            Amf0Value::EcmaArray(properties(buf, depth, true)?)
        }
        OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd),
        STRICT_ARRAY => {
            let count = u32_(buf)? as usize;
            // Every element takes at least one byte: refuse counts the input cannot hold.
            if count > buf.len() {
                return Err(Amf0Error::Truncated);
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(decode_value(buf, depth + 1)?);
            }
            Amf0Value::StrictArray(items)
        }
        DATE => {
            let millis = f64_(buf)?;
            let timezone = u16_(buf)? as i16;
            Amf0Value::Date { millis, timezone }
        }
        LONG_STRING | XML_DOCUMENT => Amf0Value::String(long_string(buf)?),
        TYPED_OBJECT => {
            let _class = short_string(buf)?;
            Amf0Value::Object(properties(buf, depth, false)?)
        }
        MOVIECLIP | REFERENCE | RECORDSET | AVMPLUS => {
            return Err(Amf0Error::UnsupportedMarker(marker));
        }
        other => return Err(Amf0Error::UnknownMarker(other)),
    })
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Amf0Value, out: &mut Vec<u8>) {
    match value {
        Amf0Value::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => {
            out.push(BOOLEAN);
            out.push(u8::from(*b));
        }
        Amf0Value::String(s) => {
            if let Ok(len) = u16::try_from(s.len()) {
                out.push(STRING);
                out.extend_from_slice(&len.to_be_bytes());
            } else {
                out.push(LONG_STRING);
                let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
            }
            out.extend_from_slice(&s.as_bytes()[..s.len().min(u32::MAX as usize)]);
        }
        Amf0Value::Object(props) => {
            out.push(OBJECT);
            encode_properties(props, out);
        }
        Amf0Value::Null => out.push(NULL),
        Amf0Value::Undefined => out.push(UNDEFINED),
        Amf0Value::EcmaArray(props) => {
            out.push(ECMA_ARRAY);
            let count = u32::try_from(props.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            encode_properties(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.push(STRICT_ARRAY);
            let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            for item in items.iter().take(count as usize) {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, timezone } => {
            out.push(DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&timezone.to_be_bytes());
        }
    }
}

fn encode_properties(props: &[(String, Amf0Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        // Keys are short strings: longer keys are cut (they cannot be represented).
        let key = &key.as_bytes()[..key.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key);
        encode(value, out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

/// Encodes a sequence of values.
pub fn encode_all(values: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode(v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Amf0Value) {
        let bytes = encode_all(std::slice::from_ref(&v));
        let back = decode_all(&bytes).expect("decodes");
        assert_eq!(back, vec![v]);
    }

    #[test]
    fn every_type_roundtrips() {
        roundtrip(Amf0Value::Number(1.5));
        roundtrip(Amf0Value::Boolean(true));
        roundtrip(Amf0Value::string("connect"));
        roundtrip(Amf0Value::Null);
        roundtrip(Amf0Value::Undefined);
        roundtrip(Amf0Value::Date {
            millis: 1.7e12,
            timezone: 0,
        });
        roundtrip(Amf0Value::String("x".repeat(70_000)));
        roundtrip(Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("n", Amf0Value::Number(3.0)),
            (
                "inner",
                Amf0Value::EcmaArray(vec![("w".into(), Amf0Value::Number(640.0))]),
            ),
        ]));
        roundtrip(Amf0Value::StrictArray(vec![
            Amf0Value::Null,
            Amf0Value::Number(1.0),
            Amf0Value::StrictArray(vec![]),
        ]));
    }

    #[test]
    fn known_encoding() {
        let bytes = encode_all(&[Amf0Value::string("a"), Amf0Value::Number(1.0)]);
        assert_eq!(bytes, [2, 0, 1, b'a', 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_all(&[Amf0Value::object([])]), [3, 0, 0, 9]);
    }

    #[test]
    fn ecma_array_without_end_marker_is_tolerated() {
        let data = [8, 0, 0, 0, 1, 0, 1, b'w', 0, 0x40, 0, 0, 0, 0, 0, 0, 0];
        let v = decode_all(&data).expect("lenient");
        assert_eq!(v[0].get("w"), Some(&Amf0Value::Number(2.0)));
    }

    #[test]
    fn typed_object_long_string_and_unsupported() {
        let data = [
            0x10, 0, 1, b'C', 0, 1, b'k', 5, 0, 0, 9, 0x0C, 0, 0, 0, 2, b'h', b'i', 0x0D,
        ];
        let v = decode_all(&data).expect("valid");
        assert_eq!(
            v,
            vec![
                Amf0Value::Object(vec![("k".into(), Amf0Value::Null)]),
                Amf0Value::string("hi"),
                Amf0Value::Undefined
            ]
        );
    }

    #[test]
    fn errors_are_reported() {
        assert_eq!(decode_all(&[0x00, 1, 2]), Err(Amf0Error::Truncated));
        assert_eq!(decode_all(&[0x20]), Err(Amf0Error::UnknownMarker(0x20)));
        assert_eq!(
            decode_all(&[0x07, 0, 1]),
            Err(Amf0Error::UnsupportedMarker(0x07))
        );
        assert_eq!(decode_all(&[0x09]), Err(Amf0Error::UnexpectedObjectEnd));
        // A strict array claiming 4 billion elements allocates nothing.
        assert_eq!(
            decode_all(&[0x0A, 0xff, 0xff, 0xff, 0xff, 5]),
            Err(Amf0Error::Truncated)
        );
        // A long string claiming 4 GiB.
        assert_eq!(
            decode_all(&[0x0C, 0xff, 0xff, 0xff, 0xff]),
            Err(Amf0Error::Truncated)
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut data = Vec::new();
        for _ in 0..100 {
            data.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        data.push(0x05);
        assert_eq!(decode_all(&data), Err(Amf0Error::TooDeep));
        let ok_depth = encode_all(&[
            (0..MAX_DEPTH).fold(Amf0Value::Null, |v, _| Amf0Value::StrictArray(vec![v]))
        ]);
        assert!(decode_all(&ok_depth).is_ok());
    }

    #[test]
    fn random_inputs_never_panic_and_reencode_stably() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for i in 0..5_000 {
            let data = crate::fuzzing::pseudo_random_bytes(&mut seed, i % 200);
            crate::fuzzing::amf0(&data);
        }
        // Inputs that start from a valid encoding and get corrupted.
        let valid = encode_all(&[
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![
                ("width".into(), Amf0Value::Number(1280.0)),
                ("x".into(), Amf0Value::StrictArray(vec![Amf0Value::Null])),
            ]),
        ]);
        for i in 0..valid.len() {
            let mut d = valid.clone();
            d[i] ^= 0x5a;
            crate::fuzzing::amf0(&d);
            crate::fuzzing::amf0(&valid[..i]);
        }
    }
}
