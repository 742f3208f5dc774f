//! The LL-HLS playlist request parameters (`_HLS_msn`, `_HLS_part`, `_HLS_skip`).

/// Longest query string accepted; real ones are a few dozen bytes.
pub const MAX_QUERY_LEN: usize = 2048;

/// Why a playlist query was refused (the HTTP layer answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query string is longer than [`MAX_QUERY_LEN`].
    #[error("query string too long")]
    TooLong,
    /// A parameter's value is not a canonical decimal number that fits in 64 bits.
    #[error("{0} is not a decimal number")]
    BadNumber(&'static str),
    /// `_HLS_skip` is neither `YES` nor `v2`.
    #[error("_HLS_skip must be YES or v2")]
    BadSkip,
    /// A parameter appears twice.
    #[error("{0} given twice")]
    Duplicate(&'static str),
    /// `_HLS_part` without `_HLS_msn`.
    #[error("_HLS_part requires _HLS_msn")]
    PartWithoutMsn,
}

/// The parameters of a media playlist request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaylistQuery {
    /// `_HLS_msn`: block until the playlist holds this media sequence number.
    pub msn: Option<u64>,
    /// `_HLS_part`: and this part index of it.
    pub part: Option<u64>,
    /// `_HLS_skip=YES` (or `v2`): a delta update is wanted.
    pub skip: bool,
}

impl PlaylistQuery {
    /// Parses a URL query string (with or without the leading `?`). Parameters other than
    /// the three LL-HLS ones are ignored; their names are not percent-decoded.
    pub fn parse(query_string: &str) -> Result<Self, QueryError> {
        if query_string.len() > MAX_QUERY_LEN {
            return Err(QueryError::TooLong);
        }
        let q = query_string.strip_prefix('?').unwrap_or(query_string);
        let mut out = Self::default();
        let mut skip_seen = false;
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "_HLS_msn" => set_once(&mut out.msn, "_HLS_msn", number("_HLS_msn", value)?)?,
                "_HLS_part" => {
                    set_once(&mut out.part, "_HLS_part", number("_HLS_part", value)?)?;
                }
                "_HLS_skip" => {
                    if skip_seen {
                        return Err(QueryError::Duplicate("_HLS_skip"));
                    }
                    skip_seen = true;
                    out.skip = match value {
                        "YES" | "v2" => true,
                        _ => return Err(QueryError::BadSkip),
                    };
                }
                _ => {}
            }
        }
        if out.part.is_some() && out.msn.is_none() {
            return Err(QueryError::PartWithoutMsn);
        }
        Ok(out)
    }
}

fn set_once(slot: &mut Option<u64>, name: &'static str, v: u64) -> Result<(), QueryError> {
    if slot.replace(v).is_some() {
        return Err(QueryError::Duplicate(name));
    }
    Ok(())
}

/// A canonical decimal: ASCII digits only, no sign, no leading zeros, fits in u64.
pub(crate) fn canonical_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn number(name: &'static str, value: &str) -> Result<u64, QueryError> {
    canonical_u64(value).ok_or(QueryError::BadNumber(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(msn: Option<u64>, part: Option<u64>, skip: bool) -> PlaylistQuery {
        PlaylistQuery { msn, part, skip }
    }

    #[test]
    fn parses_the_ll_hls_parameters() {
        assert_eq!(PlaylistQuery::parse(""), Ok(q(None, None, false)));
        assert_eq!(PlaylistQuery::parse("?"), Ok(q(None, None, false)));
        assert_eq!(
            PlaylistQuery::parse("_HLS_msn=12&_HLS_part=3"),
            Ok(q(Some(12), Some(3), false))
        );
        assert_eq!(
            PlaylistQuery::parse("?token=abc&_HLS_skip=YES&&_HLS_msn=0&x"),
            Ok(q(Some(0), None, true))
        );
        assert_eq!(
            PlaylistQuery::parse("_HLS_skip=v2"),
            Ok(q(None, None, true))
        );
        assert_eq!(
            PlaylistQuery::parse("_HLS_msn=18446744073709551615"),
            Ok(q(Some(u64::MAX), None, false))
        );
    }

    #[test]
    fn rejects_bad_inputs() {
        use QueryError::*;
        let cases: &[(&str, QueryError)] = &[
            ("_HLS_part=1", PartWithoutMsn),
            ("_HLS_msn=", BadNumber("_HLS_msn")),
            ("_HLS_msn", BadNumber("_HLS_msn")),
            ("_HLS_msn=-1", BadNumber("_HLS_msn")),
            ("_HLS_msn=+1", BadNumber("_HLS_msn")),
            ("_HLS_msn=01", BadNumber("_HLS_msn")),
            ("_HLS_msn=1.5", BadNumber("_HLS_msn")),
            ("_HLS_msn=18446744073709551616", BadNumber("_HLS_msn")),
            ("_HLS_msn=1&_HLS_part=x", BadNumber("_HLS_part")),
            ("_HLS_msn=1&_HLS_msn=2", Duplicate("_HLS_msn")),
            ("_HLS_skip=yes", BadSkip),
            ("_HLS_skip=YES&_HLS_skip=YES", Duplicate("_HLS_skip")),
        ];
        for (input, err) in cases {
            assert_eq!(PlaylistQuery::parse(input), Err(*err), "{input}");
        }
        let long = "a".repeat(MAX_QUERY_LEN + 1);
        assert_eq!(PlaylistQuery::parse(&long), Err(TooLong));
    }
}
