//! Big text for the wall screen, drawn from the public-domain 8x8 font (font8x8) with block characters:
//! [`Size::Half`] is 8 cells wide and 4 rows high per character, [`Size::Quarter`] 4 wide and 4 high. In ASCII
//! mode a cell is `#` when most of its pixels are set. Characters outside ASCII are drawn as `?`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// One cell = 1x2 pixels (upper/lower half blocks): 8x4 cells per character.
    Half,
    /// One cell = 2x2 pixels (quadrant blocks): 4x4 cells per character.
    Quarter,
}

impl Size {
    pub const HEIGHT: u16 = 4;

    /// Cells per character.
    pub fn char_width(self) -> u16 {
        match self {
            Size::Half => 8,
            Size::Quarter => 4,
        }
    }

    /// Cells `text` takes.
    pub fn width(self, text: &str) -> u16 {
        (text.chars().count() as u16).saturating_mul(self.char_width())
    }
}

/// Quadrant blocks by bits: top-left 1, top-right 2, bottom-left 4, bottom-right 8.
const QUADRANTS: [&str; 16] = [
    " ", "▘", "▝", "▀", "▖", "▌", "▞", "▛", "▗", "▚", "▐", "▜", "▄", "▙", "▟", "█",
];

fn glyph(c: char) -> [u8; 8] {
    let i = if c.is_ascii() {
        c as usize
    } else {
        '?' as usize
    };
    font8x8::legacy::BASIC_LEGACY[i]
}

/// Is pixel (x, y) of a glyph set? Bit 0 is the leftmost column.
fn pixel(g: &[u8; 8], x: usize, y: usize) -> bool {
    g[y] & (1 << x) != 0
}

/// Draw `text` big at the top left of `area`, clipped to it. Returns the cells used horizontally.
pub fn draw(
    buf: &mut Buffer,
    area: Rect,
    text: &str,
    size: Size,
    style: Style,
    ascii: bool,
) -> u16 {
    let cw = size.char_width();
    let mut x0 = area.x;
    for c in text.chars() {
        if x0.saturating_add(cw) > area.right() {
            break;
        }
        let g = glyph(c);
        for row in 0..Size::HEIGHT.min(area.height) {
            for col in 0..cw {
                let (px, py) = match size {
                    Size::Half => (col as usize, row as usize * 2),
                    Size::Quarter => (col as usize * 2, row as usize * 2),
                };
                let bits = match size {
                    Size::Half => {
                        pixel(&g, px, py) as usize | (pixel(&g, px, py + 1) as usize) << 2
                    }
                    Size::Quarter => {
                        pixel(&g, px, py) as usize
                            | (pixel(&g, px + 1, py) as usize) << 1
                            | (pixel(&g, px, py + 1) as usize) << 2
                            | (pixel(&g, px + 1, py + 1) as usize) << 3
                    }
                };
                let symbol = if ascii {
                    let set = bits.count_ones();
                    let full = if size == Size::Half { 1 } else { 2 };
                    if set >= full { "#" } else { " " }
                } else {
                    match size {
                        // Half: bit 0 = upper pixel, bit 2 = lower pixel.
                        Size::Half => QUADRANTS[bits | (bits & 1) << 1 | (bits & 4) << 1],
                        Size::Quarter => QUADRANTS[bits],
                    }
                };
                if let Some(cell) = buf.cell_mut((x0 + col, area.y + row)) {
                    cell.set_symbol(symbol).set_style(style);
                }
            }
        }
        x0 += cw;
    }
    x0 - area.x
}

/// The longest prefix of `text` (in characters) that fits `width` cells at `size`.
pub fn fit(text: &str, width: u16, size: Size) -> String {
    let n = (width / size.char_width()) as usize;
    if text.chars().count() <= n {
        return text.to_string();
    }
    if n == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(n.saturating_sub(1)).collect();
    s.push('~');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(buf: &Buffer) -> String {
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn a_digit_in_both_sizes_and_in_ascii() {
        let area = Rect::new(0, 0, 8, 4);
        let mut buf = Buffer::empty(area);
        assert_eq!(
            draw(&mut buf, area, "1", Size::Half, Style::new(), false),
            8
        );
        let half = text(&buf);
        assert!(half.contains('█'), "{half}");
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 4));
        draw(
            &mut buf,
            Rect::new(0, 0, 4, 4),
            "1",
            Size::Quarter,
            Style::new(),
            true,
        );
        let ascii = text(&buf);
        assert!(
            ascii.chars().all(|c| c == '#' || c == ' ' || c == '\n'),
            "{ascii}"
        );
        assert!(ascii.contains('#'));
    }

    #[test]
    fn clipped_to_the_area_and_fitted_with_a_mark() {
        let area = Rect::new(0, 0, 10, 4);
        let mut buf = Buffer::empty(area);
        assert_eq!(
            draw(&mut buf, area, "abc", Size::Quarter, Style::new(), false),
            8
        );
        assert_eq!(fit("nightly-etl", 16, Size::Quarter), "nig~");
        assert_eq!(fit("ok", 16, Size::Quarter), "ok");
    }
}
