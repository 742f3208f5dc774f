//! Responses: status, headers and a body of shared pieces ([`Rope`]).

use weir_hls::Rope;

/// An HTTP response ready to write.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Cache-Control`.
    pub cache_control: &'static str,
    /// The body (not sent for HEAD).
    pub body: Rope,
    /// Extra headers.
    pub extra: Vec<(&'static str, String)>,
    /// For an answer that waited for a part: when that part became available (the
    /// connection records the time to delivery).
    pub available_at: Option<std::time::Instant>,
    /// Instead of `body`: a segment in progress, sent with chunked transfer as its parts
    /// (CMAF chunks) are made, until it completes (low-latency DASH).
    pub segment_stream: Option<SegmentStream>,
}

/// A segment sent as it is being made (see [`Response::segment_stream`]).
#[derive(Debug, Clone)]
pub struct SegmentStream {
    /// The rendition it belongs to.
    pub rendition: std::sync::Arc<crate::renditions::Rendition>,
    /// Its media sequence number.
    pub msn: u64,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

impl Response {
    /// A 200 with a body.
    pub fn ok(
        content_type: &'static str,
        cache_control: &'static str,
        body: impl Into<Rope>,
    ) -> Self {
        Self {
            status: 200,
            content_type,
            cache_control,
            body: body.into(),
            extra: Vec::new(),
            available_at: None,
            segment_stream: None,
        }
    }

    /// A short plain-text error.
    pub fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            cache_control: "no-store",
            body: Rope::from(format!("{message}\n")),
            extra: Vec::new(),
            available_at: None,
            segment_stream: None,
        }
    }

    /// Serialises the status line and headers (CORS included).
    pub fn head(&self, keep_alive: bool) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut h = String::with_capacity(256);
        let _ = write!(
            h,
            "HTTP/1.1 {} {}\r\nServer: weir\r\nContent-Type: {}\r\n{}Cache-Control: {}\r\n\
             Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET, HEAD, OPTIONS, POST, PATCH, DELETE\r\n\
             Access-Control-Allow-Headers: *, Authorization\r\n\
             Access-Control-Expose-Headers: Content-Length, Age, Date, Location, ETag, Link\r\n\
             Timing-Allow-Origin: *\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            match self.segment_stream {
                Some(_) => "Transfer-Encoding: chunked\r\n".to_owned(),
                None => format!("Content-Length: {}\r\n", self.body.len()),
            },
            self.cache_control,
        );
        for (k, v) in &self.extra {
            let _ = write!(h, "{k}: {v}\r\n");
        }
        h.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        h.into_bytes()
    }
}
