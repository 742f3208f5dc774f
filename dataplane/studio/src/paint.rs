//! Still layers in BGRA (premultiplied-free, straight alpha): the background (image or
//! colour, placeholder tiles) under the pictures, and the foreground (overlay, logo)
//! over them. Painted once per scene change, not per frame.

use crate::geometry::{Rect, cover_crop};

/// A BGRA picture, rows tightly packed (`width * 4` bytes per row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgra {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes, B G R A per pixel.
    pub data: Vec<u8>,
}

/// The colour of an empty canvas (a dark slate).
pub const BACKDROP: [u8; 4] = [0x1c, 0x16, 0x12, 0xff];
/// The colour of a placeholder tile.
pub const PLACEHOLDER: [u8; 4] = [0x4a, 0x3b, 0x33, 0xff];
/// The colour of a placeholder's "avatar" disc.
pub const AVATAR: [u8; 4] = [0x8c, 0x74, 0x5e, 0xff];

impl Bgra {
    /// A picture filled with `colour` (B, G, R, A).
    pub fn filled(width: u32, height: u32, colour: [u8; 4]) -> Self {
        let mut data = Vec::with_capacity(width as usize * height as usize * 4);
        for _ in 0..(width as usize * height as usize) {
            data.extend_from_slice(&colour);
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// A picture from decoded bytes; `None` when the size does not match.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (data.len() == width as usize * height as usize * 4).then_some(Self {
            width,
            height,
            data,
        })
    }

    fn clip(&self, r: Rect) -> Option<(usize, usize, usize, usize)> {
        let x0 = r.x.clamp(0, self.width as i32) as usize;
        let y0 = r.y.clamp(0, self.height as i32) as usize;
        let x1 = r.right().clamp(0, self.width as i32) as usize;
        let y1 = r.bottom().clamp(0, self.height as i32) as usize;
        (x1 > x0 && y1 > y0).then_some((x0, y0, x1, y1))
    }

    /// Fills `r` (clipped to the picture) with `colour`, blended by `alpha`.
    pub fn fill(&mut self, r: Rect, colour: [u8; 4], alpha: f32) {
        let Some((x0, y0, x1, y1)) = self.clip(r) else {
            return;
        };
        let a = alpha.clamp(0.0, 1.0) * f32::from(colour[3]) / 255.0;
        for y in y0..y1 {
            let row = y * self.width as usize * 4;
            for x in x0..x1 {
                blend(&mut self.data[row + x * 4..row + x * 4 + 4], colour, a);
            }
        }
    }

    /// A filled disc of radius `radius` centred at (`cx`, `cy`).
    pub fn disc(&mut self, cx: i32, cy: i32, radius: i32, colour: [u8; 4], alpha: f32) {
        let bounds = Rect::new(cx - radius, cy - radius, 2 * radius, 2 * radius);
        let Some((x0, y0, x1, y1)) = self.clip(bounds) else {
            return;
        };
        let r2 = i64::from(radius) * i64::from(radius);
        let a = alpha.clamp(0.0, 1.0) * f32::from(colour[3]) / 255.0;
        for y in y0..y1 {
            let row = y * self.width as usize * 4;
            for x in x0..x1 {
                let (dx, dy) = (x as i64 - i64::from(cx), y as i64 - i64::from(cy));
                if dx * dx + dy * dy <= r2 {
                    blend(&mut self.data[row + x * 4..row + x * 4 + 4], colour, a);
                }
            }
        }
    }

    /// Draws `src` into `dst` (scaled bilinearly, alpha-blended). With `cover`, `src` is
    /// cropped centred to `dst`'s aspect first; otherwise it is stretched.
    pub fn draw(&mut self, src: &Bgra, dst: Rect, cover: bool, alpha: f32) {
        let Some((x0, y0, x1, y1)) = self.clip(dst) else {
            return;
        };
        if src.width == 0 || src.height == 0 || dst.w <= 0 || dst.h <= 0 {
            return;
        }
        let crop = if cover {
            cover_crop(src.width, src.height, dst.w, dst.h)
        } else {
            crate::geometry::Crop::default()
        };
        let sw = (src.width - crop.left - crop.right) as f32;
        let sh = (src.height - crop.top - crop.bottom) as f32;
        let (sx, sy) = (sw / dst.w as f32, sh / dst.h as f32);
        let a = alpha.clamp(0.0, 1.0);
        for y in y0..y1 {
            let fy = crop.top as f32 + ((y as i32 - dst.y) as f32 + 0.5) * sy - 0.5;
            let row = y * self.width as usize * 4;
            for x in x0..x1 {
                let fx = crop.left as f32 + ((x as i32 - dst.x) as f32 + 0.5) * sx - 0.5;
                let px = src.sample(fx, fy);
                let pa = a * f32::from(px[3]) / 255.0;
                blend(&mut self.data[row + x * 4..row + x * 4 + 4], px, pa);
            }
        }
    }

    /// Bilinear sample at (`fx`, `fy`), clamped to the edges.
    fn sample(&self, fx: f32, fy: f32) -> [u8; 4] {
        let (w, h) = (self.width as i32, self.height as i32);
        let x = fx.floor() as i32;
        let y = fy.floor() as i32;
        let (tx, ty) = (fx - x as f32, fy - y as f32);
        let at = |x: i32, y: i32| {
            let (x, y) = (x.clamp(0, w - 1) as usize, y.clamp(0, h - 1) as usize);
            let i = (y * self.width as usize + x) * 4;
            [
                self.data[i],
                self.data[i + 1],
                self.data[i + 2],
                self.data[i + 3],
            ]
        };
        let (p00, p10, p01, p11) = (at(x, y), at(x + 1, y), at(x, y + 1), at(x + 1, y + 1));
        let mut out = [0u8; 4];
        for c in 0..4 {
            let top = f32::from(p00[c]) * (1.0 - tx) + f32::from(p10[c]) * tx;
            let bottom = f32::from(p01[c]) * (1.0 - tx) + f32::from(p11[c]) * tx;
            out[c] = (top * (1.0 - ty) + bottom * ty).round().clamp(0.0, 255.0) as u8;
        }
        out
    }
}

/// Blends `src` over the pixel `dst` with opacity `a` (straight alpha).
fn blend(dst: &mut [u8], src: [u8; 4], a: f32) {
    if a <= 0.0 {
        return;
    }
    let da = f32::from(dst[3]) / 255.0;
    let out_a = a + da * (1.0 - a);
    if out_a <= 0.0 {
        return;
    }
    for c in 0..3 {
        let v = (f32::from(src[c]) * a + f32::from(dst[c]) * da * (1.0 - a)) / out_a;
        dst[c] = v.round().clamp(0.0, 255.0) as u8;
    }
    dst[3] = (out_a * 255.0).round() as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(b: &Bgra, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * b.width + x) * 4) as usize;
        [b.data[i], b.data[i + 1], b.data[i + 2], b.data[i + 3]]
    }

    #[test]
    fn fill_clips_and_blends() {
        let mut b = Bgra::filled(10, 10, [0, 0, 0, 255]);
        b.fill(Rect::new(-5, -5, 10, 10), [200, 100, 50, 255], 1.0);
        assert_eq!(px(&b, 4, 4), [200, 100, 50, 255]);
        assert_eq!(px(&b, 5, 5), [0, 0, 0, 255]);
        b.fill(Rect::new(5, 5, 5, 5), [200, 200, 200, 255], 0.5);
        assert_eq!(px(&b, 7, 7), [100, 100, 100, 255]);
    }

    #[test]
    fn draw_scales_and_covers() {
        // A 4x2 source, left half red, right half blue, drawn to cover a square: the
        // centre columns are kept, so the square is half red, half blue.
        let mut src = Bgra::filled(4, 2, [0, 0, 255, 255]);
        src.fill(Rect::new(2, 0, 2, 2), [255, 0, 0, 255], 1.0);
        let mut dst = Bgra::filled(20, 20, [0, 0, 0, 0]);
        dst.draw(&src, Rect::new(0, 0, 20, 20), true, 1.0);
        assert_eq!(px(&dst, 1, 10), [0, 0, 255, 255]);
        assert_eq!(px(&dst, 18, 10), [255, 0, 0, 255]);
        // A transparent source leaves the destination alone.
        let clear = Bgra::filled(2, 2, [9, 9, 9, 0]);
        let mut d2 = Bgra::filled(4, 4, [1, 2, 3, 255]);
        d2.draw(&clear, Rect::new(0, 0, 4, 4), false, 1.0);
        assert_eq!(px(&d2, 2, 2), [1, 2, 3, 255]);
    }

    #[test]
    fn raw_sizes_are_checked() {
        assert!(Bgra::from_raw(2, 2, vec![0; 16]).is_some());
        assert!(Bgra::from_raw(2, 2, vec![0; 15]).is_none());
    }
}
