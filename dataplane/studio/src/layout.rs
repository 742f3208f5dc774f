//! The layout function: participants + layout + canvas → tiles.
//!
//! Tiles keep a 16:9 aspect (a camera is cropped to it, centred, see
//! [`crate::cover_crop`]), sit on an even pixel grid, and never overlap within one
//! z-order; the only layered layout is picture-in-picture (the inset above the main
//! picture). Who is shown where:
//!
//! | layout | shown |
//! |---|---|
//! | solo | the featured participant, full canvas |
//! | grid | everyone, equal tiles, rows filled top to bottom, a short last row centred |
//! | spotlight | the featured one large on top, the others in a row of small tiles below |
//! | sidebar | the featured one large on the left, the others stacked on the right |
//! | picture-in-picture | the featured one full canvas, the next one in an inset (bottom right) |
//!
//! The featured participant is the spotlight when it is on stage, else the first.

use crate::geometry::Rect;

/// Aspect of a tile.
const TILE_ASPECT: (i32, i32) = (16, 9);
/// Most participants drawn in one layout (a 4×4 grid).
pub const MAX_TILES: usize = 16;

/// How the program arranges the participants on stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// One participant fills the canvas.
    Solo,
    /// Everyone in equal tiles.
    #[default]
    Grid,
    /// The featured participant large, the others small below.
    Spotlight,
    /// The featured participant large on the left, the others on the right.
    Sidebar,
    /// The featured participant full canvas, the next one inset.
    PictureInPicture,
}

/// The output picture's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canvas {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Canvas {
    /// The whole canvas as a rectangle.
    pub fn rect(self) -> Rect {
        Rect::new(0, 0, self.width as i32, self.height as i32)
    }

    /// The gap between tiles: 1/90 of the height (8 px at 720p), even.
    fn gap(self) -> i32 {
        crate::geometry::even_down((self.height / 90).max(2) as i32)
    }
}

/// Where one participant is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Index of the participant in the stage order given to [`layout`].
    pub participant: usize,
    /// Destination on the canvas.
    pub rect: Rect,
    /// Stacking order: higher is drawn above (1 for every tile, 2 for a PiP inset).
    pub z: u32,
}

/// Tiles for `count` participants (in stage order) in `layout`, featuring participant
/// `featured` (an index below `count`; out of range means the first).
pub fn layout(layout: Layout, count: usize, featured: Option<usize>, canvas: Canvas) -> Vec<Tile> {
    let count = count.min(MAX_TILES);
    if count == 0 || canvas.width < 16 || canvas.height < 16 {
        return Vec::new();
    }
    let main = featured.filter(|&f| f < count).unwrap_or(0);
    let others: Vec<usize> = (0..count).filter(|&i| i != main).collect();
    let full = canvas.rect();
    let tile = |participant, rect, z| Tile {
        participant,
        rect,
        z,
    };
    match layout {
        Layout::Solo => vec![tile(main, full, 1)],
        Layout::Grid => grid(canvas, count)
            .into_iter()
            .enumerate()
            .map(|(i, r)| tile(i, r, 1))
            .collect(),
        Layout::PictureInPicture => {
            let mut tiles = vec![tile(main, full, 1)];
            if let Some(&inset) = others.first() {
                let gap = canvas.gap() * 2;
                let w = crate::geometry::even_down(full.w / 4);
                let h = crate::geometry::even_down(w * TILE_ASPECT.1 / TILE_ASPECT.0);
                let r = Rect::new(full.w - gap - w, full.h - gap - h, w, h);
                tiles.push(tile(inset, r, 2));
            }
            tiles
        }
        Layout::Spotlight if others.is_empty() => vec![tile(main, full, 1)],
        Layout::Spotlight => {
            let gap = canvas.gap();
            let strip_h = full.h / 5;
            let main_area = Rect::new(gap, gap, full.w - 2 * gap, full.h - strip_h - 3 * gap);
            let strip = Rect::new(0, main_area.bottom() + gap, full.w, strip_h);
            let mut tiles = vec![tile(main, main_area.fit(TILE_ASPECT.0, TILE_ASPECT.1), 1)];
            let row = row_of(strip, others.len(), gap, full.w / 5);
            tiles.extend(others.iter().zip(row).map(|(&p, r)| tile(p, r, 1)));
            tiles
        }
        Layout::Sidebar if others.is_empty() => vec![tile(main, full, 1)],
        Layout::Sidebar => {
            let gap = canvas.gap();
            let side_w = full.w / 4;
            let main_area = Rect::new(gap, gap, full.w - side_w - 3 * gap, full.h - 2 * gap);
            let side = Rect::new(main_area.right() + gap, 0, side_w, full.h);
            let mut tiles = vec![tile(main, main_area.fit(TILE_ASPECT.0, TILE_ASPECT.1), 1)];
            let column = column_of(side, others.len(), gap, full.h / 4);
            tiles.extend(others.iter().zip(column).map(|(&p, r)| tile(p, r, 1)));
            tiles
        }
    }
}

/// Equal 16:9 tiles for `count` participants: the column count that gives the largest
/// tiles, rows top to bottom, the block centred and a short last row centred.
fn grid(canvas: Canvas, count: usize) -> Vec<Rect> {
    let full = canvas.rect();
    let gap = canvas.gap();
    let n = count as i32;
    let best = (1..=n)
        .map(|cols| {
            let rows = (n + cols - 1) / cols;
            let cell_w = (full.w - gap * (cols + 1)) / cols;
            let cell_h = (full.h - gap * (rows + 1)) / rows;
            let t = Rect::new(0, 0, cell_w, cell_h).fit(TILE_ASPECT.0, TILE_ASPECT.1);
            (cols, rows, t.w, t.h)
        })
        .max_by_key(|&(cols, _, w, h)| (i64::from(w) * i64::from(h), -cols))
        .unwrap_or((1, 1, 0, 0));
    let (cols, rows, w, h) = best;
    let block_h = rows * h + (rows - 1) * gap;
    let top = crate::geometry::even_down((full.h - block_h) / 2);
    (0..n)
        .map(|i| {
            let row = i / cols;
            let in_row = if row == rows - 1 {
                n - row * cols
            } else {
                cols
            };
            let row_w = in_row * w + (in_row - 1) * gap;
            let left = crate::geometry::even_down((full.w - row_w) / 2);
            let col = i % cols;
            Rect::new(left + col * (w + gap), top + row * (h + gap), w, h)
        })
        .collect()
}

/// `count` 16:9 tiles side by side in `strip`, each at most `max_w` wide, centred.
fn row_of(strip: Rect, count: usize, gap: i32, max_w: i32) -> Vec<Rect> {
    let n = count as i32;
    if n == 0 {
        return Vec::new();
    }
    let cell_w = ((strip.w - gap * (n + 1)) / n).min(max_w);
    let t = Rect::new(0, 0, cell_w, strip.h).fit(TILE_ASPECT.0, TILE_ASPECT.1);
    let row_w = n * t.w + (n - 1) * gap;
    let left = strip.x + crate::geometry::even_down((strip.w - row_w) / 2);
    let top = strip.y + crate::geometry::even_down((strip.h - t.h) / 2);
    (0..n)
        .map(|i| Rect::new(left + i * (t.w + gap), top, t.w, t.h))
        .collect()
}

/// `count` 16:9 tiles stacked in `column`, each at most `max_h` high, centred.
fn column_of(column: Rect, count: usize, gap: i32, max_h: i32) -> Vec<Rect> {
    let n = count as i32;
    if n == 0 {
        return Vec::new();
    }
    let cell_h = ((column.h - gap * (n + 1)) / n).min(max_h);
    let t = Rect::new(0, 0, column.w - gap, cell_h).fit(TILE_ASPECT.0, TILE_ASPECT.1);
    let col_h = n * t.h + (n - 1) * gap;
    let top = column.y + crate::geometry::even_down((column.h - col_h) / 2);
    let left = column.x + crate::geometry::even_down((column.w - gap - t.w) / 2);
    (0..n)
        .map(|i| Rect::new(left, top + i * (t.h + gap), t.w, t.h))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD: Canvas = Canvas {
        width: 1280,
        height: 720,
    };
    const ALL: [Layout; 5] = [
        Layout::Solo,
        Layout::Grid,
        Layout::Spotlight,
        Layout::Sidebar,
        Layout::PictureInPicture,
    ];

    fn shown(l: Layout, n: usize) -> usize {
        match l {
            Layout::Solo => 1.min(n),
            Layout::PictureInPicture => 2.min(n),
            _ => n.min(MAX_TILES),
        }
    }

    #[test]
    fn every_layout_and_count_is_inside_without_overlap_and_keeps_the_aspect() {
        for canvas in [
            HD,
            Canvas {
                width: 1920,
                height: 1080,
            },
            Canvas {
                width: 640,
                height: 360,
            },
        ] {
            for l in ALL {
                for n in 0..=MAX_TILES + 2 {
                    let tiles = layout(l, n, None, canvas);
                    assert_eq!(tiles.len(), shown(l, n), "{l:?} n={n}");
                    let mut seen: Vec<usize> = tiles.iter().map(|t| t.participant).collect();
                    seen.sort_unstable();
                    seen.dedup();
                    assert_eq!(seen.len(), tiles.len(), "{l:?} n={n}: a participant twice");
                    for (i, a) in tiles.iter().enumerate() {
                        assert!(canvas.rect().contains(a.rect), "{l:?} n={n}: {a:?} outside");
                        assert!(a.rect.w > 0 && a.rect.h > 0, "{l:?} n={n}: empty {a:?}");
                        assert_eq!(a.rect.x % 2 + a.rect.y % 2 + a.rect.w % 2 + a.rect.h % 2, 0);
                        // 16:9 within a pixel of rounding (the canvas itself is 16:9).
                        let err = (a.rect.w * 9 - a.rect.h * 16).abs();
                        assert!(err <= 32, "{l:?} n={n}: {a:?} not 16:9");
                        for b in &tiles[i + 1..] {
                            if a.z == b.z {
                                assert!(!a.rect.overlaps(b.rect), "{l:?} n={n}: {a:?} {b:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn grid_shapes() {
        let dims = |n| {
            let t = layout(Layout::Grid, n, None, HD);
            let mut xs: Vec<i32> = t.iter().map(|t| t.rect.x).collect();
            let mut ys: Vec<i32> = t.iter().map(|t| t.rect.y).collect();
            xs.sort_unstable();
            xs.dedup();
            ys.sort_unstable();
            ys.dedup();
            (xs.len(), ys.len())
        };
        assert_eq!(dims(1), (1, 1));
        assert_eq!(dims(2), (2, 1));
        assert_eq!(dims(4), (2, 2));
        assert_eq!(dims(9), (3, 3));
        // 3: two on top, one centred below.
        let t = layout(Layout::Grid, 3, None, HD);
        assert_eq!(t[0].rect.y, t[1].rect.y);
        assert!(t[2].rect.y > t[0].rect.y);
        let centre = t[2].rect.x + t[2].rect.w / 2;
        assert!((centre - 640).abs() <= 2, "last row centred: {centre}");
        // Equal sizes.
        assert!(
            t.iter()
                .all(|x| x.rect.w == t[0].rect.w && x.rect.h == t[0].rect.h)
        );
    }

    #[test]
    fn the_featured_participant_is_large() {
        for l in [
            Layout::Spotlight,
            Layout::Sidebar,
            Layout::PictureInPicture,
            Layout::Solo,
        ] {
            let t = layout(l, 4, Some(2), HD);
            assert_eq!(t[0].participant, 2, "{l:?}");
            let main = t[0].rect.w * t[0].rect.h;
            assert!(
                t[1..].iter().all(|x| x.rect.w * x.rect.h * 4 <= main),
                "{l:?}"
            );
        }
        // A spotlight off stage (out of range) features the first.
        assert_eq!(layout(Layout::Solo, 2, Some(7), HD)[0].participant, 0);
    }

    #[test]
    fn picture_in_picture_insets_above_the_main_picture() {
        let t = layout(Layout::PictureInPicture, 3, Some(1), HD);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].participant, t[0].z), (1, 1));
        assert_eq!((t[1].participant, t[1].z), (0, 2));
        assert_eq!(t[0].rect, HD.rect());
        assert!(t[0].rect.contains(t[1].rect));
        assert!(t[1].rect.x > 640 && t[1].rect.y > 360, "bottom right");
    }

    #[test]
    fn tiny_canvases_give_nothing_rather_than_garbage() {
        assert!(
            layout(
                Layout::Grid,
                4,
                None,
                Canvas {
                    width: 8,
                    height: 8
                }
            )
            .is_empty()
        );
    }
}
