//! Errors of WebRTC negotiation and sessions.

/// Why an offer was refused or a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebrtcError {
    /// The offer is not SDP str0m can read.
    #[error("the offer is not valid SDP: {0}")]
    BadSdp(String),
    /// The offer carries nothing this endpoint can receive or send.
    #[error("the offer has no usable media: {0}")]
    NoUsableMedia(String),
    /// The offer is SDP but cannot be answered.
    #[error("cannot answer the offer: {0}")]
    Negotiation(String),
    /// The session failed after it was set up (ICE, DTLS, SRTP).
    #[error("WebRTC session failed: {0}")]
    Session(String),
    /// No local address to offer as an ICE candidate.
    #[error("no local ICE candidate is configured")]
    NoCandidates,
}

impl WebrtcError {
    /// The HTTP status a WHIP/WHEP endpoint answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            WebrtcError::BadSdp(_) => 400,
            WebrtcError::NoUsableMedia(_) | WebrtcError::Negotiation(_) => 422,
            WebrtcError::Session(_) | WebrtcError::NoCandidates => 500,
        }
    }
}
