//! End-to-end tests that drive the real binary with real peers.
