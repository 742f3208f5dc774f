//! Checking uploaded images: PNG or JPEG by their magic bytes, and their dimensions
//! read from the header (PNG `IHDR`, JPEG start-of-frame). Bounded: at most
//! [`MAX_IMAGE_BYTES`] are looked at and the JPEG marker walk stops at the end of the
//! input; nothing is decoded beyond the header.

/// Largest accepted upload.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Largest accepted width or height.
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// What an image header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// `image/png` or `image/jpeg`.
    pub mime: &'static str,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Nothing uploaded.
    #[error("the image is empty")]
    Empty,
    /// Over [`MAX_IMAGE_BYTES`].
    #[error("the image is {0} bytes; at most 2 MiB (2097152 bytes) are accepted")]
    TooLarge(usize),
    /// Neither PNG nor JPEG magic bytes.
    #[error("not a PNG or JPEG image (its first bytes are neither)")]
    NotAnImage,
    /// The declared type differs from the content.
    #[error("the content is {actual} but was sent as {declared}")]
    TypeMismatch {
        /// The Content-Type sent.
        declared: String,
        /// What the bytes are.
        actual: &'static str,
    },
    /// The header is cut short or inconsistent.
    #[error("the {0} header is truncated or corrupt")]
    BadHeader(&'static str),
    /// Zero or over [`MAX_IMAGE_SIDE`] pixels on a side.
    #[error("the image is {width}x{height}; at most 4096x4096 (and at least 1x1) is accepted")]
    BadDimensions {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Checks `data` (size, type, dimensions) and returns what it is.
pub fn sniff_image(data: &[u8]) -> Result<ImageInfo, ImageError> {
    if data.is_empty() {
        return Err(ImageError::Empty);
    }
    if data.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooLarge(data.len()));
    }
    let info = if data.starts_with(PNG_MAGIC) {
        png(data)?
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg(data)?
    } else {
        return Err(ImageError::NotAnImage);
    };
    if info.width == 0
        || info.height == 0
        || info.width > MAX_IMAGE_SIDE
        || info.height > MAX_IMAGE_SIDE
    {
        return Err(ImageError::BadDimensions {
            width: info.width,
            height: info.height,
        });
    }
    Ok(info)
}

/// [`sniff_image`], and the declared Content-Type must match the content.
pub fn check_image(data: &[u8], declared: &str) -> Result<ImageInfo, ImageError> {
    let info = sniff_image(data)?;
    let declared = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let same = declared == info.mime || (info.mime == "image/jpeg" && declared == "image/jpg");
    if !same {
        return Err(ImageError::TypeMismatch {
            declared,
            actual: info.mime,
        });
    }
    Ok(info)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// PNG: the first chunk must be `IHDR` (13 bytes): width, height.
fn png(data: &[u8]) -> Result<ImageInfo, ImageError> {
    let bad = ImageError::BadHeader("PNG");
    let len = be32(data, 8).ok_or(bad.clone())?;
    if len != 13 || data.get(12..16) != Some(b"IHDR") {
        return Err(bad);
    }
    let width = be32(data, 16).ok_or(bad.clone())?;
    let height = be32(data, 20).ok_or(bad.clone())?;
    // Bit depth, colour type, compression, filter, interlace and the CRC must be there.
    if data.len() < 33 {
        return Err(bad);
    }
    Ok(ImageInfo {
        mime: "image/png",
        width,
        height,
    })
}

/// JPEG: walks the marker segments after SOI up to the first start-of-frame.
fn jpeg(data: &[u8]) -> Result<ImageInfo, ImageError> {
    let bad = ImageError::BadHeader("JPEG");
    let mut at = 2usize;
    loop {
        // Markers may be padded with 0xFF fill bytes.
        while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if data.get(at) != Some(&0xFF) {
            return Err(bad);
        }
        let marker = *data.get(at + 1).ok_or(bad.clone())?;
        at += 2;
        match marker {
            // Standalone markers (no length): TEM, RSTn.
            0x01 | 0xD0..=0xD7 => continue,
            // End of image or start of scan before any frame header.
            0xD9 | 0xDA => return Err(bad),
            _ => {}
        }
        let len = usize::from(be16(data, at).ok_or(bad.clone())?);
        if len < 2 {
            return Err(bad);
        }
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            // length(2) precision(1) height(2) width(2)
            if len < 7 {
                return Err(bad);
            }
            let height = be16(data, at + 3).ok_or(bad.clone())?;
            let width = be16(data, at + 5).ok_or(bad.clone())?;
            return Ok(ImageInfo {
                mime: "image/jpeg",
                width: u32::from(width),
                height: u32::from(height),
            });
        }
        at = at.checked_add(len).ok_or(bad.clone())?;
    }
}

/// A minimal valid PNG header of `width`×`height` (tests and fixtures).
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut v = PNG_MAGIC.to_vec();
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&[8, 6, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked)
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_header(width: u16, height: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        // APP0 (JFIF), 16 bytes.
        v.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
        v.extend_from_slice(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
        // SOF0.
        v.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        v.extend_from_slice(&height.to_be_bytes());
        v.extend_from_slice(&width.to_be_bytes());
        v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        v
    }

    #[test]
    fn reads_png_and_jpeg_dimensions() {
        assert_eq!(
            sniff_image(&png_header(1280, 720)),
            Ok(ImageInfo {
                mime: "image/png",
                width: 1280,
                height: 720
            })
        );
        assert_eq!(
            check_image(&jpeg_header(640, 360), "image/jpeg; charset=x"),
            Ok(ImageInfo {
                mime: "image/jpeg",
                width: 640,
                height: 360
            })
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(sniff_image(b""), Err(ImageError::Empty));
        assert_eq!(sniff_image(b"GIF89a......"), Err(ImageError::NotAnImage));
        assert_eq!(
            sniff_image(&png_header(5000, 10)),
            Err(ImageError::BadDimensions {
                width: 5000,
                height: 10
            })
        );
        assert_eq!(
            sniff_image(&png_header(0, 10)),
            Err(ImageError::BadDimensions {
                width: 0,
                height: 10
            })
        );
        let mut big = png_header(10, 10);
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        assert_eq!(
            sniff_image(&big),
            Err(ImageError::TooLarge(MAX_IMAGE_BYTES + 1))
        );
        assert!(matches!(
            check_image(&png_header(10, 10), "image/jpeg"),
            Err(ImageError::TypeMismatch { .. })
        ));
        // Truncated headers, at every length.
        let png = png_header(10, 10);
        for n in 8..png.len() {
            assert_eq!(sniff_image(&png[..n]), Err(ImageError::BadHeader("PNG")));
        }
        let jpg = jpeg_header(10, 10);
        for n in 3..27 {
            assert_eq!(sniff_image(&jpg[..n]), Err(ImageError::BadHeader("JPEG")));
        }
        // A segment length pointing past the end, and a zero length.
        assert!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF]).is_err());
        assert!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0xFF]).is_err());
    }
}
