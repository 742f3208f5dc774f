//! SCRIPTDATA: `onMetaData` (optionally behind `@setDataFrame`) via the bounded AMF0
//! decoder of `weir-rtmp`.

use weir_rtmp::amf0::{self, Amf0Value};

use crate::FlvError;

/// What an encoder announces about its stream in `onMetaData`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamMetadata {
    /// `width` in pixels.
    pub width: Option<u32>,
    /// `height` in pixels.
    pub height: Option<u32>,
    /// `framerate` (or `videoframerate`) in frames per second.
    pub framerate: Option<f64>,
    /// `videodatarate` in kbit/s.
    pub video_data_rate: Option<f64>,
    /// `audiodatarate` in kbit/s.
    pub audio_data_rate: Option<f64>,
    /// `audiosamplerate` in Hz.
    pub audio_sample_rate: Option<f64>,
    /// `encoder` (e.g. `obs-output module`, `Lavf59.27.100`).
    pub encoder: Option<String>,
}

/// Parses a script data body. Returns `Ok(None)` for data messages other than
/// `onMetaData` (`onTextData`, `onCuePoint`, …).
pub fn parse_metadata(payload: &[u8]) -> Result<Option<StreamMetadata>, FlvError> {
    let mut buf = payload;
    let mut name = amf0::decode(&mut buf)?;
    if name.as_str() == Some("@setDataFrame") {
        name = amf0::decode(&mut buf)?;
    }
    if name.as_str() != Some("onMetaData") {
        return Ok(None);
    }
    let props = amf0::decode(&mut buf)?;
    let num = |k: &str| {
        props
            .get(k)
            .and_then(Amf0Value::as_number)
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    let dim = |k: &str| {
        num(k)
            .filter(|n| *n <= f64::from(u16::MAX))
            .map(|n| n as u32)
    };
    Ok(Some(StreamMetadata {
        width: dim("width"),
        height: dim("height"),
        framerate: num("framerate").or_else(|| num("videoframerate")),
        video_data_rate: num("videodatarate"),
        audio_data_rate: num("audiodatarate"),
        audio_sample_rate: num("audiosamplerate"),
        encoder: props
            .get("encoder")
            .and_then(Amf0Value::as_str)
            .map(|s| s.chars().take(256).collect()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(prefix: bool) -> Vec<u8> {
        let mut v = Vec::new();
        if prefix {
            v.push(Amf0Value::string("@setDataFrame"));
        }
        v.push(Amf0Value::string("onMetaData"));
        v.push(Amf0Value::EcmaArray(vec![
            ("width".into(), Amf0Value::Number(1280.0)),
            ("height".into(), Amf0Value::Number(720.0)),
            ("framerate".into(), Amf0Value::Number(30.0)),
            ("videodatarate".into(), Amf0Value::Number(2500.0)),
            ("audiodatarate".into(), Amf0Value::Number(160.0)),
            ("encoder".into(), Amf0Value::string("obs-output module")),
        ]));
        amf0::encode_all(&v)
    }

    #[test]
    fn on_meta_data_with_and_without_set_data_frame() {
        for prefix in [false, true] {
            let m = parse_metadata(&meta(prefix))
                .expect("valid")
                .expect("metadata");
            assert_eq!((m.width, m.height), (Some(1280), Some(720)));
            assert_eq!(m.framerate, Some(30.0));
            assert_eq!(m.video_data_rate, Some(2500.0));
            assert_eq!(m.audio_data_rate, Some(160.0));
            assert_eq!(m.encoder.as_deref(), Some("obs-output module"));
        }
    }

    #[test]
    fn other_data_and_bad_values() {
        let other = amf0::encode_all(&[Amf0Value::string("onCuePoint"), Amf0Value::Null]);
        assert_eq!(parse_metadata(&other), Ok(None));
        let bad = amf0::encode_all(&[
            Amf0Value::string("onMetaData"),
            Amf0Value::object([
                ("width", Amf0Value::Number(-5.0)),
                ("height", Amf0Value::Number(f64::NAN)),
                ("framerate", Amf0Value::string("30")),
            ]),
        ]);
        let m = parse_metadata(&bad).expect("valid").expect("metadata");
        assert_eq!(m, StreamMetadata::default());
        assert!(parse_metadata(&[0x02, 0x00]).is_err());
        assert!(parse_metadata(&amf0::encode_all(&[Amf0Value::string("onMetaData")])).is_err());
    }
}
