//! The packing slip that travels with a replacement: what is in the box, how to swap it, and how the
//! failed unit goes back.
use super::sheet::Sheet;
use crate::domain::swap::{RETURN_STEPS, swap_steps};

pub struct SlipData {
    pub number: String,
    pub ship_to: Vec<String>,
    pub ship_from: Vec<String>,
    pub replacement_serial: String,
    pub part: String,
    pub kind: String,
    pub description: String,
    /// What the replacement replaces, in words.
    pub replaces: String,
    pub carrier: String,
    pub tracking_number: String,
    pub return_depot: String,
    pub url: String,
}

/// US Letter in points.
const WIDTH: f32 = 612.0;
const HEIGHT: f32 = 792.0;

/// Breaks `text` into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![];
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

pub fn packing_slip_pdf(d: &SlipData) -> anyhow::Result<Vec<u8>> {
    let mut s = Sheet::new(WIDTH, HEIGHT);
    s.text(40.0, 56.0, 20.0, true, &format!("Packing slip  {}", d.number));
    s.code128(40.0, 66.0, 240.0, 36.0, &d.number)?;
    s.qr(500.0, 30.0, 72.0, &d.url)?;
    let mut y = 130.0;
    s.text(40.0, y, 9.0, true, "SHIP TO");
    s.text(320.0, y, 9.0, true, "FROM");
    for (i, line) in d.ship_to.iter().enumerate() {
        s.text(40.0, y + 14.0 + i as f32 * 13.0, 11.0, false, line);
    }
    for (i, line) in d.ship_from.iter().enumerate() {
        s.text(320.0, y + 14.0 + i as f32 * 13.0, 11.0, false, line);
    }
    y += 100.0;
    s.rule(y);
    y += 22.0;
    s.text(40.0, y, 13.0, true, "In this box");
    y += 18.0;
    s.text(
        40.0,
        y,
        11.0,
        false,
        &format!("1 x {} ({}) {}", d.part, d.kind, d.description),
    );
    y += 15.0;
    s.text(40.0, y, 11.0, false, &format!("Serial {}", d.replacement_serial));
    y += 15.0;
    s.text(40.0, y, 11.0, false, &d.replaces);
    y += 15.0;
    s.text(
        40.0,
        y,
        11.0,
        false,
        &format!("Shipped by {} {}", d.carrier, d.tracking_number),
    );
    y += 26.0;
    s.text(40.0, y, 13.0, true, "How to swap it");
    for (i, step) in swap_steps(&d.kind).iter().enumerate() {
        for (j, line) in wrap(step, 90).iter().enumerate() {
            y += 15.0;
            let prefix = if j == 0 { format!("{}. ", i + 1) } else { "    ".into() };
            s.text(40.0, y, 11.0, false, &format!("{prefix}{line}"));
        }
    }
    y += 26.0;
    s.text(
        40.0,
        y,
        13.0,
        true,
        &format!("Sending the failed unit back to depot {}", d.return_depot),
    );
    for (i, step) in RETURN_STEPS.iter().enumerate() {
        for (j, line) in wrap(step, 90).iter().enumerate() {
            y += 15.0;
            let prefix = if j == 0 { format!("{}. ", i + 1) } else { "    ".into() };
            s.text(40.0, y, 11.0, false, &format!("{prefix}{line}"));
        }
    }
    y += 22.0;
    s.text(
        40.0,
        y,
        10.0,
        false,
        &format!("Confirm the delivery and the swap on the RMA: {}", d.url),
    );
    Ok(s.finish(&format!("Packing slip {}", d.number)))
}
