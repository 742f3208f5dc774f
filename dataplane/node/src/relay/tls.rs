//! TLS for `rtmps://` destinations: rustls's sans-IO client between the RTMP session's
//! bytes and the socket's, so the relay driver stays the same with or without it.
//!
//! Server certificates are checked against Mozilla's roots (webpki-roots, compiled in,
//! so a node needs no system CA bundle) plus the operator's own CA file if one is set
//! (`relay_ca_file`: a private CA, or a test's self-signed certificate).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// Why TLS could not be set up or went wrong (no secrets in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("relay CA file {0}: {1}")]
    CaFile(String, String),
    /// The host is not a valid TLS server name.
    #[error("{0} is not a valid TLS server name")]
    ServerName(String),
    /// The TLS session failed (handshake, certificate, protocol).
    #[error("TLS: {0}")]
    Session(String),
}

/// The client configuration every `rtmps://` relay of a node shares.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::CaFile(shown.clone(), e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::CaFile(shown.clone(), e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsError::CaFile(shown, "no certificate in it".into()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| TlsError::CaFile(shown.clone(), e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Session(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One TLS client session.
pub struct TlsLayer {
    conn: ClientConnection,
}

impl TlsLayer {
    /// A session to `host` (a name, or an address literal checked against IP SANs).
    pub fn new(config: Arc<ClientConfig>, host: &str) -> Result<Self, TlsError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsError::ServerName(host.to_owned()))?;
        let conn =
            ClientConnection::new(config, name).map_err(|e| TlsError::Session(e.to_string()))?;
        Ok(Self { conn })
    }

    /// Encrypts `plain` (buffered until the handshake is done) and returns every TLS
    /// record to send now, handshake records included.
    pub fn encode(&mut self, plain: &[u8]) -> Result<Vec<u8>, TlsError> {
        if !plain.is_empty() {
            self.conn
                .writer()
                .write_all(plain)
                .map_err(|e| TlsError::Session(e.to_string()))?;
        }
        let mut out = Vec::new();
        while self.conn.wants_write() {
            self.conn
                .write_tls(&mut out)
                .map_err(|e| TlsError::Session(e.to_string()))?;
        }
        Ok(out)
    }

    /// Takes bytes from the socket and returns the plaintext they complete.
    pub fn decode(&mut self, mut cipher: &[u8]) -> Result<Vec<u8>, TlsError> {
        let mut plain = Vec::new();
        while !cipher.is_empty() {
            self.conn
                .read_tls(&mut cipher)
                .map_err(|e| TlsError::Session(e.to_string()))?;
            self.conn
                .process_new_packets()
                .map_err(|e| TlsError::Session(e.to_string()))?;
            match self.conn.reader().read_to_end(&mut plain) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(TlsError::Session(e.to_string())),
            }
        }
        Ok(plain)
    }

    /// TLS has records to send (a handshake answer) even without new plaintext.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_client_hello_goes_out_first_and_plaintext_waits_for_the_handshake() {
        let config = client_config(None).unwrap();
        let mut tls = TlsLayer::new(config, "a.rtmps.youtube.com").unwrap();
        let first = tls.encode(b"\x03PLAINTEXT-MARKER").unwrap();
        // A TLS handshake record (ClientHello), not the RTMP bytes.
        assert_eq!(first[0], 0x16, "handshake record");
        assert!(!first.windows(9).any(|w| w == b"PLAINTEXT"));
        assert!(tls.encode(&[]).unwrap().is_empty());
        // Garbage from the server fails the session with a clear error.
        let err = tls.decode(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap_err();
        assert!(matches!(err, TlsError::Session(_)), "{err}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused() {
        assert!(matches!(
            client_config(Some(Path::new("/nonexistent/ca.pem"))),
            Err(TlsError::CaFile(..))
        ));
        let dir = std::env::temp_dir().join(format!("weir-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            client_config(Some(&empty)),
            Err(TlsError::CaFile(..))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
