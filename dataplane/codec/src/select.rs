//! Choosing the decoder and encoder at run time, as a pure function of what is installed
//! and what already failed, so that the NVENC/NVDEC choice and its fallback are tested on
//! machines without a GPU.

use crate::config::EncoderChoice;
use crate::error::CodecError;

/// An H.264 encoder element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EncoderKind {
    /// `x264enc` (CPU, gst-plugins-ugly).
    X264,
    /// `nvh264enc` (NVENC, gst-plugins-bad `nvcodec`; registered only where a driver and
    /// an NVENC-capable GPU exist).
    Nvenc,
}

impl EncoderKind {
    /// The GStreamer element factory name.
    pub fn factory(self) -> &'static str {
        match self {
            EncoderKind::X264 => "x264enc",
            EncoderKind::Nvenc => "nvh264enc",
        }
    }
}

/// An H.264 decoder element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecoderKind {
    /// `avdec_h264` (libavcodec, CPU).
    Avdec,
    /// `nvh264dec` (NVDEC; present on data-centre GPUs that have no NVENC, e.g. H100/H200).
    Nvdec,
}

impl DecoderKind {
    /// The GStreamer element factory name.
    pub fn factory(self) -> &'static str {
        match self {
            DecoderKind::Avdec => "avdec_h264",
            DecoderKind::Nvdec => "nvh264dec",
        }
    }
}

/// What the pipeline builder should try: one decoder and one encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// The decoder.
    pub decoder: DecoderKind,
    /// The encoder.
    pub encoder: EncoderKind,
}

/// Remembers which GPU elements failed to start, and picks the next thing to try.
///
/// `available(factory)` says whether an element factory exists; a GPU element that exists
/// may still fail to open its device (no NVENC on the GPU, no driver, sessions exhausted):
/// the caller then reports it with [`Selector::failed`] and asks again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    choice: EncoderChoice,
    failed_encoders: Vec<EncoderKind>,
    failed_decoders: Vec<DecoderKind>,
}

impl Selector {
    /// A selector for `choice` with nothing failed yet.
    pub fn new(choice: EncoderChoice) -> Self {
        Self {
            choice,
            failed_encoders: Vec::new(),
            failed_decoders: Vec::new(),
        }
    }

    /// The decoder and encoder to try next.
    ///
    /// Encoder: `Auto` prefers NVENC, then x264; `X264` and `Nvenc` allow only that one.
    /// Decoder: NVDEC when present and not failed (it frees the CPU for encoding), else
    /// `avdec_h264`.
    pub fn next(&self, available: &dyn Fn(&str) -> bool) -> Result<Selection, CodecError> {
        let encoders: &[EncoderKind] = match self.choice {
            EncoderChoice::Auto => &[EncoderKind::Nvenc, EncoderKind::X264],
            EncoderChoice::X264 => &[EncoderKind::X264],
            EncoderChoice::Nvenc => &[EncoderKind::Nvenc],
        };
        let encoder = encoders
            .iter()
            .copied()
            .find(|e| available(e.factory()) && !self.failed_encoders.contains(e))
            .ok_or_else(|| CodecError::NoCodec {
                what: "encoder",
                reason: self.reason(encoders.iter().map(|e| e.factory()), available),
            })?;
        let decoders = [DecoderKind::Nvdec, DecoderKind::Avdec];
        let decoder = decoders
            .iter()
            .copied()
            .find(|d| available(d.factory()) && !self.failed_decoders.contains(d))
            .ok_or_else(|| CodecError::NoCodec {
                what: "decoder",
                reason: self.reason(decoders.iter().map(|d| d.factory()), available),
            })?;
        Ok(Selection { decoder, encoder })
    }

    /// Records that `attempt` failed to start. The GPU element is blamed first (the
    /// encoder, then the decoder); returns false when the attempt used only CPU elements,
    /// i.e. there is nothing left to fall back from.
    pub fn failed(&mut self, attempt: Selection) -> bool {
        if attempt.encoder == EncoderKind::Nvenc && !self.failed_encoders.contains(&attempt.encoder)
        {
            self.failed_encoders.push(attempt.encoder);
            true
        } else if attempt.decoder == DecoderKind::Nvdec
            && !self.failed_decoders.contains(&attempt.decoder)
        {
            self.failed_decoders.push(attempt.decoder);
            true
        } else {
            false
        }
    }

    /// Records that one encoder is unusable (e.g. a probe pipeline did not reach PLAYING).
    pub fn encoder_failed(&mut self, encoder: EncoderKind) {
        if !self.failed_encoders.contains(&encoder) {
            self.failed_encoders.push(encoder);
        }
    }

    /// Records that one decoder is unusable.
    pub fn decoder_failed(&mut self, decoder: DecoderKind) {
        if !self.failed_decoders.contains(&decoder) {
            self.failed_decoders.push(decoder);
        }
    }

    fn reason<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
        available: &dyn Fn(&str) -> bool,
    ) -> String {
        let failed: Vec<&str> = self
            .failed_encoders
            .iter()
            .map(|e| e.factory())
            .chain(self.failed_decoders.iter().map(|d| d.factory()))
            .collect();
        names
            .map(|n| {
                let why = if !available(n) {
                    "not installed"
                } else if failed.contains(&n) {
                    "failed to start"
                } else {
                    "unusable"
                };
                format!("{n} {why}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(names: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |n| names.contains(&n)
    }

    const CPU: &[&str] = &["x264enc", "avdec_h264"];
    const NVENC_BOX: &[&str] = &["x264enc", "avdec_h264", "nvh264enc", "nvh264dec"];
    /// An H100/H200: NVDEC but no NVENC, so nvcodec registers no nvh264enc.
    const NVDEC_ONLY: &[&str] = &["x264enc", "avdec_h264", "nvh264dec"];

    fn sel(decoder: DecoderKind, encoder: EncoderKind) -> Selection {
        Selection { decoder, encoder }
    }

    #[test]
    fn auto_on_a_cpu_machine_is_x264() {
        let s = Selector::new(EncoderChoice::Auto);
        assert_eq!(
            s.next(&has(CPU)),
            Ok(sel(DecoderKind::Avdec, EncoderKind::X264))
        );
    }

    #[test]
    fn auto_prefers_nvenc_and_falls_back_when_it_fails_to_start() {
        let mut s = Selector::new(EncoderChoice::Auto);
        let first = s.next(&has(NVENC_BOX)).expect("a selection");
        assert_eq!(first, sel(DecoderKind::Nvdec, EncoderKind::Nvenc));
        // nvh264enc exists but cannot open a session: x264, still on NVDEC.
        assert!(s.failed(first));
        let second = s.next(&has(NVENC_BOX)).expect("a selection");
        assert_eq!(second, sel(DecoderKind::Nvdec, EncoderKind::X264));
        // NVDEC fails too: all CPU.
        assert!(s.failed(second));
        let third = s.next(&has(NVENC_BOX)).expect("a selection");
        assert_eq!(third, sel(DecoderKind::Avdec, EncoderKind::X264));
        // Nothing left to fall back from.
        assert!(!s.failed(third));
    }

    #[test]
    fn a_gpu_without_nvenc_decodes_on_gpu_and_encodes_on_cpu() {
        let s = Selector::new(EncoderChoice::Auto);
        assert_eq!(
            s.next(&has(NVDEC_ONLY)),
            Ok(sel(DecoderKind::Nvdec, EncoderKind::X264))
        );
    }

    #[test]
    fn explicit_choices_do_not_fall_back() {
        let s = Selector::new(EncoderChoice::X264);
        assert_eq!(
            s.next(&has(NVENC_BOX)).map(|s| s.encoder),
            Ok(EncoderKind::X264)
        );
        let mut s = Selector::new(EncoderChoice::Nvenc);
        let err = s.next(&has(CPU)).expect_err("no nvenc here");
        assert!(err.to_string().contains("nvh264enc not installed"), "{err}");
        let first = s.next(&has(NVENC_BOX)).expect("nvenc present");
        assert!(s.failed(first));
        let err = s.next(&has(NVENC_BOX)).expect_err("nvenc failed");
        assert!(
            err.to_string().contains("nvh264enc failed to start"),
            "{err}"
        );
    }

    #[test]
    fn probe_failures_and_missing_elements() {
        let mut s = Selector::new(EncoderChoice::Auto);
        s.encoder_failed(EncoderKind::Nvenc);
        s.decoder_failed(DecoderKind::Nvdec);
        assert_eq!(
            s.next(&has(NVENC_BOX)),
            Ok(sel(DecoderKind::Avdec, EncoderKind::X264))
        );
        let s = Selector::new(EncoderChoice::Auto);
        assert!(matches!(
            s.next(&has(&["avdec_h264"])),
            Err(CodecError::NoCodec {
                what: "encoder",
                ..
            })
        ));
        assert!(matches!(
            s.next(&has(&["x264enc"])),
            Err(CodecError::NoCodec {
                what: "decoder",
                ..
            })
        ));
    }
}
