//! FLV tag parsing (legacy and Enhanced RTMP) into media-bus frames.
