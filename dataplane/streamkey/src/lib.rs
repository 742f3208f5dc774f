//! HMAC-signed, revocable stream keys.
