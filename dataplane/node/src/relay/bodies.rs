//! FLV bodies of a broadcast's recent frames, made once for all its relays on a shard.
//!
//! Every destination of a broadcast is its own bus subscriber and muxer (own queue, own
//! timeline), but a frame's FLV tag body, and its chunk stream form, are the same for
//! all of them: the first relay to send a frame makes them, the others find them here.
//! A relay that is behind (its frames no longer here) makes its own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use weir_flv::mux::{self, MuxError};
use weir_media::{Codec, Frame};
use weir_rtmp::SharedBody;

/// How many recent frames keep their bodies (about a second of 30 fps video and AAC).
const KEEP: usize = 96;

/// Recent frames' bodies, shared by the relays of one broadcast on one shard.
#[derive(Debug, Default)]
pub struct FrameBodies {
    recent: RefCell<VecDeque<Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// The frame's coded bytes: holding them keeps their address from being reused, so
    /// address and length identify the frame.
    data: Bytes,
    video: bool,
    codec: Codec,
    keyframe: bool,
    /// Composition offset (ticks): part of a video body.
    cts: i64,
    body: SharedBody,
}

impl FrameBodies {
    /// An empty set (one per broadcast and shard).
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// The FLV video tag body of `f` ([`mux::video_frame`]).
    pub fn video(&self, codec: Codec, f: &Frame) -> Result<SharedBody, MuxError> {
        self.get_or_make(true, codec, f, || mux::video_frame(codec, f))
    }

    /// The FLV audio tag body of `f` ([`mux::audio_frame`]).
    pub fn audio(&self, codec: Codec, f: &Frame) -> Result<SharedBody, MuxError> {
        self.get_or_make(false, codec, f, || mux::audio_frame(codec, f))
    }

    fn get_or_make(
        &self,
        video: bool,
        codec: Codec,
        f: &Frame,
        make: impl FnOnce() -> Result<Bytes, MuxError>,
    ) -> Result<SharedBody, MuxError> {
        let cts = if video { f.pts - f.dts } else { 0 };
        let mut recent = self.recent.borrow_mut();
        let found = recent.iter().rev().find(|e| {
            e.data.as_ptr() == f.data.as_ptr()
                && e.data.len() == f.data.len()
                && (e.video, e.codec, e.keyframe, e.cts) == (video, codec, f.keyframe, cts)
        });
        if let Some(e) = found {
            return Ok(e.body.clone());
        }
        let body = SharedBody::new(make()?);
        if recent.len() >= KEEP {
            recent.pop_front();
        }
        recent.push_back(Entry {
            data: f.data.clone(),
            video,
            codec,
            keyframe: f.keyframe,
            cts,
            body: body.clone(),
        });
        Ok(body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use weir_media::TrackId;

    fn frame(data: &Bytes, pts_offset: i64) -> Frame {
        Frame {
            track: TrackId::VIDEO,
            dts: 3000,
            pts: 3000 + pts_offset,
            keyframe: true,
            data: data.clone(),
        }
    }

    #[test]
    fn one_body_per_frame() {
        let bodies = FrameBodies::new();
        let data = Bytes::from(vec![1u8; 100]);
        let a = bodies.video(Codec::H264, &frame(&data, 0)).unwrap();
        let b = bodies.video(Codec::H264, &frame(&data, 0)).unwrap();
        assert_eq!(a.payload().as_ptr(), b.payload().as_ptr(), "shared");
        // Same bytes, another composition offset: another body.
        let c = bodies.video(Codec::H264, &frame(&data, 3000)).unwrap();
        assert_ne!(a.payload(), c.payload());
        // Equal bytes elsewhere are another frame (made again, equal).
        let copy = Bytes::from(vec![1u8; 100]);
        let d = bodies.video(Codec::H264, &frame(&copy, 0)).unwrap();
        assert_ne!(a.payload().as_ptr(), d.payload().as_ptr());
        assert_eq!(a.payload(), d.payload());
        // Old frames are forgotten.
        for _ in 0..KEEP {
            let other = Bytes::from(vec![2u8; 10]);
            bodies.video(Codec::H264, &frame(&other, 0)).unwrap();
        }
        let e = bodies.video(Codec::H264, &frame(&data, 0)).unwrap();
        assert_ne!(a.payload().as_ptr(), e.payload().as_ptr());
        assert!(bodies.recent.borrow().len() <= KEEP);
    }
}
