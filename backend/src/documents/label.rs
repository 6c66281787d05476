//! The return label of SPEC §6: 4x6 inches, ship-from the site, ship-to the depot, the RMA number and
//! the failed serial as Code 128, a QR code linking to the RMA, part number, package n of m, weight.
use super::sheet::Sheet;

/// What a return label shows.
pub struct LabelData {
    pub number: String,
    pub serial: String,
    pub part: String,
    pub description: String,
    pub ship_from: Vec<String>,
    pub ship_to: Vec<String>,
    pub depot: String,
    pub url: String,
    pub package: i32,
    pub packages: i32,
    pub weight_kg: Option<f64>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
}

impl LabelData {
    fn weight(&self) -> String {
        match self.weight_kg {
            Some(kg) => format!("{kg:.1} kg ({:.1} lb)", kg * 2.204_62),
            None => "weight: ________".into(),
        }
    }
}

/// 4x6 inches in points.
const WIDTH: f32 = 288.0;
const HEIGHT: f32 = 432.0;

pub fn return_label_pdf(d: &LabelData) -> anyhow::Result<Vec<u8>> {
    let mut s = Sheet::new(WIDTH, HEIGHT);
    s.text(12.0, 22.0, 15.0, true, "RMA RETURN");
    s.text(
        150.0,
        22.0,
        10.0,
        false,
        &format!("PACKAGE {} OF {}", d.package, d.packages),
    );
    s.rule(30.0);
    s.text(12.0, 44.0, 7.5, true, "SHIP FROM");
    for (i, line) in d.ship_from.iter().enumerate() {
        s.text(12.0, 55.0 + i as f32 * 10.0, 8.5, false, line);
    }
    s.rule(118.0);
    s.text(12.0, 132.0, 7.5, true, "SHIP TO");
    for (i, line) in d.ship_to.iter().enumerate() {
        s.text(12.0, 148.0 + i as f32 * 15.0, 13.0, i == 0, line);
    }
    s.rule(232.0);
    s.text(12.0, 246.0, 7.5, true, "RMA");
    s.code128(12.0, 250.0, WIDTH - 24.0, 44.0, &d.number)?;
    s.text(12.0, 306.0, 10.0, true, &d.number);
    s.text(12.0, 322.0, 7.5, true, "SERIAL");
    s.code128(12.0, 326.0, 190.0, 40.0, &d.serial)?;
    s.text(12.0, 378.0, 10.0, true, &d.serial);
    s.qr(206.0, 318.0, 70.0, &d.url)?;
    s.text(12.0, 394.0, 8.5, false, &format!("Part {}  {}", d.part, d.description));
    s.text(
        12.0,
        406.0,
        8.5,
        false,
        &format!("{}   to depot {}", d.weight(), d.depot),
    );
    if let (Some(carrier), Some(tracking)) = (&d.carrier, &d.tracking_number) {
        s.text(12.0, 418.0, 8.5, false, &format!("{carrier} {tracking}"));
    }
    s.text(12.0, 428.0, 6.5, false, &d.url);
    Ok(s.finish(&format!("Return label {}", d.number)))
}

/// ZPL escapes: `^` and `~` start commands, so they are replaced in field data.
fn zpl_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '^' || c == '~' || !(' '..='~').contains(&c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The same label for a 203 dpi Zebra printer (812 x 1218 dots).
pub fn return_label_zpl(d: &LabelData) -> String {
    let mut z = String::from("^XA\n^PW812\n^LL1218\n^CI0\n");
    let mut field = |x: u32, y: u32, size: u32, text: &str| {
        z.push_str(&format!("^FO{x},{y}^A0N,{size},{size}^FD{}^FS\n", zpl_text(text)));
    };
    field(30, 30, 50, "RMA RETURN");
    field(450, 40, 30, &format!("PACKAGE {} OF {}", d.package, d.packages));
    field(30, 110, 22, "SHIP FROM");
    for (i, line) in d.ship_from.iter().enumerate() {
        field(30, 140 + i as u32 * 30, 26, line);
    }
    field(30, 330, 22, "SHIP TO");
    for (i, line) in d.ship_to.iter().enumerate() {
        field(30, 365 + i as u32 * 42, 38, line);
    }
    field(30, 1080, 26, &format!("Part {}  {}", d.part, d.description));
    field(30, 1115, 26, &format!("{}   to depot {}", d.weight(), d.depot));
    if let (Some(carrier), Some(tracking)) = (&d.carrier, &d.tracking_number) {
        field(30, 1150, 26, &format!("{carrier} {tracking}"));
    }
    z.push_str(&format!("^FO30,650^BY3^BCN,120,Y,N,N^FD{}^FS\n", zpl_text(&d.number)));
    z.push_str(&format!("^FO30,850^BY2^BCN,110,Y,N,N^FD{}^FS\n", zpl_text(&d.serial)));
    z.push_str(&format!("^FO560,820^BQN,2,6^FDQA,{}^FS\n", zpl_text(&d.url)));
    z.push_str("^XZ\n");
    z
}
