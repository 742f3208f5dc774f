//! The stream-key issuer the binary provides (the Ed25519 key format belongs to the data plane).

/// Issues and revokes ingest stream keys. Implemented by the `weir` binary over the data
/// plane's key format; the API only stores the key id and shows the secret once.
pub trait StreamKeyIssuer: Send + Sync + 'static {
    /// Issues a key for a channel: returns `(key_id, secret_key)`. The key id must be made
    /// of `[A-Za-z0-9_.-]` (it is a storage key); the secret is shown to the user once.
    fn issue(&self, channel: &str) -> (String, String);

    /// Revokes a key id (e.g. pushes it to the data plane's revocation list).
    fn revoke(&self, key_id: &str);

    /// The query string (`exp=…&sig=…`) that lets a player open `channel`'s playlists on
    /// the data plane until `expires_at` (UNIX seconds).
    fn sign_playback(&self, channel: &str, expires_at: u64) -> String;
}
