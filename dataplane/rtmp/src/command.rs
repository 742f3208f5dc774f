//! NetConnection / NetStream commands: `name, transaction id, command object, args…`.

use crate::amf0::{self, Amf0Error, Amf0Value};

/// One AMF0 command message.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The command name (`connect`, `createStream`, `publish`, `_result`, `onStatus`, …).
    pub name: String,
    /// Transaction id: answers carry the id of the request; 0 means "no answer expected".
    pub transaction_id: f64,
    /// The command object (often `Null`).
    pub object: Amf0Value,
    /// Further arguments.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// A command with the given parts.
    pub fn new(name: &str, transaction_id: f64, object: Amf0Value, args: Vec<Amf0Value>) -> Self {
        Self {
            name: name.to_owned(),
            transaction_id,
            object,
            args,
        }
    }

    /// Decodes a command body. The name must be a string; a missing transaction id or
    /// object reads as 0 / `Null`, and arguments after a malformed one are dropped
    /// (encoders append odd trailing values; the leading ones are what matter).
    pub fn decode(payload: &[u8]) -> Result<Self, Amf0Error> {
        let mut buf = payload;
        let name = match amf0::decode(&mut buf)? {
            Amf0Value::String(s) => s,
            _ => return Err(Amf0Error::Truncated),
        };
        let mut rest = Vec::new();
        while !buf.is_empty() {
            match amf0::decode(&mut buf) {
                Ok(v) => rest.push(v),
                Err(_) => break,
            }
        }
        let mut rest = rest.into_iter();
        let transaction_id = rest.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let object = rest.next().unwrap_or(Amf0Value::Null);
        Ok(Self {
            name,
            transaction_id,
            object,
            args: rest.collect(),
        })
    }

    /// Decodes only the name and transaction id of a command body (a missing or
    /// malformed id reads as 0), leaving objects and arguments undecoded.
    pub fn peek(payload: &[u8]) -> Result<(String, f64), Amf0Error> {
        // A string marker (short or long) first: nothing else is decoded for a name.
        if !matches!(payload.first(), Some(0x02 | 0x0C)) {
            return Err(Amf0Error::Truncated);
        }
        let mut buf = payload;
        let name = match amf0::decode(&mut buf)? {
            Amf0Value::String(s) => s,
            _ => return Err(Amf0Error::Truncated),
        };
        let txn = match buf.first() {
            Some(0) => amf0::decode(&mut buf).ok().and_then(|v| v.as_number()),
            _ => None,
        };
        Ok((name, txn.unwrap_or(0.0)))
    }

    /// Encodes the command body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        amf0::encode(&Amf0Value::String(self.name.clone()), &mut out);
        amf0::encode(&Amf0Value::Number(self.transaction_id), &mut out);
        amf0::encode(&self.object, &mut out);
        for a in &self.args {
            amf0::encode(a, &mut out);
        }
        out
    }

    /// The string argument at `i`, if there is one.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i).and_then(Amf0Value::as_str)
    }

    /// The numeric argument at `i`, if there is one.
    pub fn arg_number(&self, i: usize) -> Option<f64> {
        self.args.get(i).and_then(Amf0Value::as_number)
    }
}

/// The status object of an `onStatus` / `_result` / `_error`.
pub fn status_object(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::object([
        ("level", Amf0Value::string(level)),
        ("code", Amf0Value::string(code)),
        ("description", Amf0Value::string(description)),
    ])
}

/// An `onStatus(0, null, {level, code, description})` command.
pub fn on_status(level: &str, code: &str, description: &str) -> Command {
    Command::new(
        "onStatus",
        0.0,
        Amf0Value::Null,
        vec![status_object(level, code, description)],
    )
}

/// Reads `(level, code, description)` from a status object.
pub fn read_status(v: &Amf0Value) -> (String, String, String) {
    let s = |k| {
        v.get(k)
            .and_then(Amf0Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    (s("level"), s("code"), s("description"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_lenient_decode() {
        let c = Command::new(
            "publish",
            5.0,
            Amf0Value::Null,
            vec![Amf0Value::string("key?x=1"), Amf0Value::string("live")],
        );
        let bytes = c.encode();
        assert_eq!(Command::decode(&bytes), Ok(c.clone()));
        assert_eq!(c.arg_str(0), Some("key?x=1"));
        // Trailing garbage after the arguments is dropped, not fatal.
        let mut more = bytes.clone();
        more.extend_from_slice(&[0x00, 1]);
        assert_eq!(Command::decode(&more), Ok(c));
        // Only a name.
        let only = amf0::encode_all(&[Amf0Value::string("x")]);
        let d = Command::decode(&only).expect("lenient");
        assert_eq!((d.transaction_id, d.object), (0.0, Amf0Value::Null));
        assert!(Command::decode(&[0x00]).is_err());
        assert!(Command::decode(&amf0::encode_all(&[Amf0Value::Null])).is_err());
    }

    #[test]
    fn status_helpers() {
        let c = on_status("error", "NetStream.Publish.BadName", "taken");
        let (l, code, d) = read_status(&c.args[0]);
        assert_eq!(
            (l.as_str(), code.as_str(), d.as_str()),
            ("error", "NetStream.Publish.BadName", "taken")
        );
    }
}
