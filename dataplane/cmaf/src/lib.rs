//! CMAF / fragmented MP4 writer.
