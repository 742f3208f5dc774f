//! Rectangles on the canvas and centred crops of a source.

/// A rectangle in canvas pixels (origin top-left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width (> 0 for a visible tile).
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl Rect {
    /// A rectangle from its edges and size.
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Self {
        Self { x, y, w, h }
    }

    /// Right edge (exclusive).
    pub const fn right(self) -> i32 {
        self.x + self.w
    }

    /// Bottom edge (exclusive).
    pub const fn bottom(self) -> i32 {
        self.y + self.h
    }

    /// Whether the two share any pixel.
    pub fn overlaps(self, other: Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn contains(self, other: Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }

    /// The largest rectangle of aspect `aw:ah` inside `self`, centred, with even
    /// position and size (video planes are subsampled by two).
    pub fn fit(self, aw: i32, ah: i32) -> Rect {
        if self.w <= 0 || self.h <= 0 || aw <= 0 || ah <= 0 {
            return Rect::new(self.x, self.y, 0, 0);
        }
        let (w, h) = if i64::from(self.w) * i64::from(ah) > i64::from(self.h) * i64::from(aw) {
            (
                (i64::from(self.h) * i64::from(aw) / i64::from(ah)) as i32,
                self.h,
            )
        } else {
            (
                self.w,
                (i64::from(self.w) * i64::from(ah) / i64::from(aw)) as i32,
            )
        };
        let (w, h) = (even_down(w), even_down(h));
        Rect::new(
            even_down(self.x + (self.w - w) / 2),
            even_down(self.y + (self.h - h) / 2),
            w,
            h,
        )
    }

    /// Linear interpolation towards `to` (`t` in 0..=1), rounded to even pixels.
    pub fn lerp(self, to: Rect, t: f32) -> Rect {
        let t = t.clamp(0.0, 1.0);
        let mix = |a: i32, b: i32| even_down((a as f32 + (b - a) as f32 * t).round() as i32);
        Rect::new(
            mix(self.x, to.x),
            mix(self.y, to.y),
            mix(self.w, to.w),
            mix(self.h, to.h),
        )
    }
}

/// Pixels cut from each edge of a source so that it fills a tile without distortion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Crop {
    /// From the left edge.
    pub left: u32,
    /// From the right edge.
    pub right: u32,
    /// From the top edge.
    pub top: u32,
    /// From the bottom edge.
    pub bottom: u32,
}

/// The centred crop of a `src_w`×`src_h` source to the aspect of a `w`×`h` tile
/// ("cover": the tile is filled, the source keeps its aspect, the excess is cut evenly
/// from both sides).
pub fn cover_crop(src_w: u32, src_h: u32, w: i32, h: i32) -> Crop {
    if src_w == 0 || src_h == 0 || w <= 0 || h <= 0 {
        return Crop::default();
    }
    let (sw, sh, tw, th) = (u64::from(src_w), u64::from(src_h), w as u64, h as u64);
    if sw * th > sh * tw {
        // Source is wider: cut left and right.
        let keep = (sh * tw / th).max(1) as u32;
        let cut = src_w.saturating_sub(keep);
        Crop {
            left: cut / 2,
            right: cut - cut / 2,
            ..Crop::default()
        }
    } else {
        let keep = (sw * th / tw).max(1) as u32;
        let cut = src_h.saturating_sub(keep);
        Crop {
            top: cut / 2,
            bottom: cut - cut / 2,
            ..Crop::default()
        }
    }
}

/// Rounds down to an even number.
pub const fn even_down(v: i32) -> i32 {
    v & !1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_and_centres() {
        let r = Rect::new(0, 0, 640, 720).fit(16, 9);
        assert_eq!(r, Rect::new(0, 180, 640, 360));
        let r = Rect::new(10, 10, 1000, 100).fit(16, 9);
        assert_eq!((r.w, r.h), (176, 100));
        assert_eq!(r.x, 10 + (1000 - 176) / 2);
    }

    #[test]
    fn cover_crop_cuts_evenly() {
        // 4:3 into 16:9: cut top and bottom.
        let c = cover_crop(640, 480, 1280, 720);
        assert_eq!(
            c,
            Crop {
                top: 60,
                bottom: 60,
                left: 0,
                right: 0
            }
        );
        // 16:9 into a square: cut the sides.
        let c = cover_crop(1280, 720, 300, 300);
        assert_eq!(
            c,
            Crop {
                left: 280,
                right: 280,
                top: 0,
                bottom: 0
            }
        );
        // Same aspect: nothing.
        assert_eq!(cover_crop(1920, 1080, 640, 360), Crop::default());
    }

    #[test]
    fn lerp_ends_at_both_ends() {
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(200, 100, 400, 300);
        assert_eq!(a.lerp(b, 0.0), a);
        assert_eq!(a.lerp(b, 1.0), b);
        let mid = a.lerp(b, 0.5);
        assert_eq!(mid, Rect::new(100, 50, 250, 200));
    }
}
