//! QR codes of `otpauth://` URIs: SVG for the desktop screen, PNG for the command line, and
//! text for a terminal.

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module in the PNG, and modules of quiet zone around the code.
const SCALE: usize = 8;
const QUIET: usize = 4;

fn code(data: &str) -> QrCode {
    // Medium error correction: an otpauth URI fits comfortably, and the code survives glare.
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .expect("an otpauth URI fits in a QR code")
}

/// An SVG document of the code.
pub fn svg(data: &str) -> String {
    code(data)
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build()
}

/// A grayscale PNG of the code.
pub fn png(data: &str) -> Vec<u8> {
    let qr = code(data);
    let n = qr.width();
    let colors = qr.to_colors();
    let side = (n + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (x, y) = (i % n + QUIET, i / n + QUIET);
            for dy in 0..SCALE {
                let row = (y * SCALE + dy) * side;
                pixels[row + x * SCALE..row + (x + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("PNG header into memory");
        w.write_image_data(&pixels).expect("PNG data into memory");
    }
    out
}

/// The code drawn with Unicode half blocks, two modules per character row, for a terminal.
pub fn text(data: &str) -> String {
    let qr = code(data);
    let n = qr.width();
    let colors = qr.to_colors();
    let dark = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < n
            && (y as usize) < n
            && colors[y as usize * n + x as usize] == Color::Dark
    };
    let q = 2isize;
    let mut out = String::new();
    let mut y = -q;
    while y < n as isize + q {
        for x in -q..n as isize + q {
            out.push(match (dark(x, y), dark(x, y + 1)) {
                (true, true) => ' ',
                (true, false) => '▄',
                (false, true) => '▀',
                (false, false) => '█',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}
