//! The data-plane node: thread-per-core shards, ingest and HTTP origin drivers.
