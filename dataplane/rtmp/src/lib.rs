//! RTMP ingest core (sans-IO).
