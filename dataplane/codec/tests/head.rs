//! Clip heads: a mid-GOP start re-encoded from the keyframe before, the source's own
//! frames kept from the start on.

use weir_codec::synth::{SynthSpec, synth_h264};
use weir_codec::{cpu_ladder_available, reencode_head};

#[test]
fn a_head_starts_at_the_asked_frame_with_a_keyframe() {
    if let Err(e) = cpu_ladder_available() {
        eprintln!("skipping head test: {e}");
        return;
    }
    let spec = SynthSpec {
        width: 320,
        height: 240,
        fps: 30,
        frames: 60,
        gop: 30,
        bframes: 2,
        ..SynthSpec::default()
    };
    let (config, frames) = synth_h264(&spec).expect("synthetic source");
    // The first GOP (decode order, up to the second keyframe).
    let next_key = frames
        .iter()
        .skip(1)
        .position(|f| f.keyframe)
        .expect("two GOPs")
        + 1;
    let gop = &frames[..next_key];
    let mut pts: Vec<i64> = gop.iter().map(|f| f.pts).collect();
    pts.sort_unstable();
    let start = pts[10];
    let head = reencode_head(&config, gop, start, 20).expect("head");
    let got: Vec<i64> = head.iter().map(|f| f.pts).collect();
    assert_eq!(
        got,
        pts[10..].to_vec(),
        "one output frame per kept source frame"
    );
    assert!(head[0].keyframe, "the head starts with a keyframe");
    // SPS and PPS in band in the first sample.
    let nal_types: Vec<u8> = {
        let d = &head[0].data;
        let mut at = 0;
        let mut t = Vec::new();
        while at + 4 <= d.len() {
            let n = u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]) as usize;
            t.push(d[at + 4] & 0x1f);
            at += 4 + n;
        }
        t
    };
    assert!(
        nal_types.contains(&7) && nal_types.contains(&8) && nal_types.contains(&5),
        "{nal_types:?}"
    );
}
