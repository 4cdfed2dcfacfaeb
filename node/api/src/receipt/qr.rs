//! The verification QR code as an inline SVG: one path of dark modules on a
//! white square with the standard four-module quiet zone. Drawn here from the
//! `qrcode` crate's module matrix (its own SVG renderer begins with an XML
//! declaration, which does not belong inside an HTML page).

use qrcode::{Color, EcLevel, QrCode};

/// Modules of white around the code, as the standard asks.
const QUIET_ZONE_MODULES: usize = 4;

/// An SVG image of a QR code for `text` (medium error correction, which
/// survives a crease or a smudge on thermal paper), or `None` when `text` is
/// too long for a QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let side = width + 2 * QUIET_ZONE_MODULES;
    let mut path = String::new();
    for (index, color) in code.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (index % width + QUIET_ZONE_MODULES, index / width + QUIET_ZONE_MODULES);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Some(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" shape-rendering="crispEdges" role="img"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_url_becomes_a_self_contained_svg() {
        let svg = qr_svg("https://hub.comune.example/v/7KQ2M9XW4R").unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "));
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        // Version 2 or 3 (25 or 29 modules) plus the quiet zone.
        assert!(svg.contains("viewBox=\"0 0 33 33\"") || svg.contains("viewBox=\"0 0 37 37\""), "{}", &svg[..80]);
        assert!(svg.matches('M').count() > 100);
    }

    #[test]
    fn a_text_too_long_for_any_qr_code_gives_none() {
        assert!(qr_svg(&"x".repeat(5_000)).is_none());
    }
}
