//! The still layers of a plan: what is under the pictures (background, placeholders)
//! and what is over them (overlay, logo).

use crate::geometry::Rect;
use crate::layout::Canvas;
use crate::paint::{AVATAR, BACKDROP, Bgra, PLACEHOLDER};
use crate::program::Placeholder;

/// Decoded images of a scene (each already a [`Bgra`] at its own size).
#[derive(Debug, Clone, Default)]
pub struct Stills {
    /// Background, drawn to cover the canvas.
    pub background: Option<Bgra>,
    /// Logo, top right, one eighth of the canvas height.
    pub logo: Option<Bgra>,
    /// Overlay, stretched to the canvas.
    pub overlay: Option<Bgra>,
}

/// The layer under the pictures: backdrop or background image, and the placeholder tiles.
pub fn under(canvas: Canvas, stills: &Stills, placeholders: &[Placeholder]) -> Bgra {
    let mut out = Bgra::filled(canvas.width, canvas.height, BACKDROP);
    if let Some(bg) = &stills.background {
        out.draw(bg, canvas.rect(), true, 1.0);
    }
    for p in placeholders {
        out.fill(p.rect, PLACEHOLDER, p.alpha);
        let radius = p.rect.h.min(p.rect.w) / 5;
        out.disc(
            p.rect.x + p.rect.w / 2,
            p.rect.y + p.rect.h / 2,
            radius,
            AVATAR,
            p.alpha,
        );
    }
    out
}

/// The layer over the pictures (transparent where nothing is drawn); `None` when the
/// scene has neither overlay nor logo.
pub fn over(canvas: Canvas, stills: &Stills) -> Option<Bgra> {
    if stills.overlay.is_none() && stills.logo.is_none() {
        return None;
    }
    let mut out = Bgra::filled(canvas.width, canvas.height, [0, 0, 0, 0]);
    if let Some(o) = &stills.overlay {
        out.draw(o, canvas.rect(), false, 1.0);
    }
    if let Some(logo) = &stills.logo
        && logo.height > 0
    {
        let h = (canvas.height / 8).max(2) as i32;
        let w = (i64::from(logo.width) * i64::from(h) / i64::from(logo.height)) as i32;
        let margin = (canvas.height / 36) as i32;
        let r = Rect::new(canvas.width as i32 - margin - w, margin, w, h);
        out.draw(logo, r, false, 1.0);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Canvas = Canvas {
        width: 320,
        height: 180,
    };

    #[test]
    fn placeholders_are_painted_where_the_tiles_are() {
        let p = Placeholder {
            participant: "a".into(),
            name: "A".into(),
            rect: Rect::new(10, 10, 100, 56),
            alpha: 1.0,
        };
        let layer = under(C, &Stills::default(), &[p]);
        let at = |x: u32, y: u32| {
            let i = ((y * C.width + x) * 4) as usize;
            [
                layer.data[i],
                layer.data[i + 1],
                layer.data[i + 2],
                layer.data[i + 3],
            ]
        };
        assert_eq!(at(12, 12), PLACEHOLDER);
        assert_eq!(at(60, 38), AVATAR);
        assert_eq!(at(200, 150), BACKDROP);
    }

    #[test]
    fn the_logo_goes_top_right_and_nothing_else_is_drawn() {
        let logo = Bgra::filled(40, 20, [0, 255, 0, 255]);
        let stills = Stills {
            logo: Some(logo),
            ..Stills::default()
        };
        let layer = over(C, &stills).expect("a layer");
        let alpha = |x: u32, y: u32| layer.data[((y * C.width + x) * 4 + 3) as usize];
        assert_eq!(alpha(C.width - 10, 10), 255);
        assert_eq!(alpha(10, 10), 0);
        assert_eq!(alpha(C.width - 10, 170), 0);
        assert!(over(C, &Stills::default()).is_none());
    }
}
