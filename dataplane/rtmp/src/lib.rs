//! RTMP ingest core, sans-IO.
//!
//! Bytes and `now` go in, transmits and events come out; there are no sockets, clocks
//! or threads here, so every path is testable in virtual time and fuzzable.
//!
//! - [`handshake`]: C0/C1/C2 ⇄ S0/S1/S2 (simple handshake; digest C1s are echoed).
//! - [`chunk`]: the dechunker ([`chunk::ChunkReader`], bounded by message size, pending
//!   bytes and chunk stream count) and the chunker ([`chunk::ChunkWriter`]).
//! - [`amf0`]: bounded AMF0 encoding and decoding.
//! - [`message`]: message type ids and protocol control messages.
//! - [`command`]: NetConnection/NetStream commands.
//! - [`ServerSession`]: a publisher's connection as seen by the server, emitting
//!   [`ServerEvent`]s (connect, publish requests, media, unpublish).
//! - [`ClientSession`]: a publishing client (load generator, relays, tests).
//! - [`fuzzing`]: the bodies of the cargo-fuzz targets, shared with unit tests.

pub mod amf0;
pub mod chunk;
mod client;
pub mod command;
mod error;
pub mod fuzzing;
pub mod handshake;
mod link;
pub mod message;
mod server;

pub use chunk::SharedBody;
pub use client::{ClientConfig, ClientEvent, ClientOutput, ClientSession};
pub use error::RtmpError;
pub use server::{MAX_STREAMS, MediaKind, ServerConfig, ServerEvent, ServerOutput, ServerSession};
