//! LL-HLS packaging and playlist state (sans-IO).
