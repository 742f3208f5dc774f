//! Control-plane storage traits and backends.
