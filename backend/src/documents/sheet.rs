//! A one-page PDF drawn in points from the bottom-left corner, with Helvetica text, Code 128
//! barcodes and QR codes drawn as filled rectangles.
use barcoders::sym::code128::Code128;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use qrcode::{Color, QrCode};

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

pub struct Sheet {
    width: f32,
    height: f32,
    content: Content,
}

/// Text the base-14 fonts can show: printable ASCII; anything else becomes `?`.
fn ascii(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| if (' '..='~').contains(&c) { c as u8 } else { b'?' })
        .collect()
}

impl Sheet {
    pub fn new(width: f32, height: f32) -> Sheet {
        Sheet {
            width,
            height,
            content: Content::new(),
        }
    }

    /// One line of text whose baseline is `y` points from the top.
    pub fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let bytes = ascii(text);
        self.content.begin_text();
        self.content.set_font(if bold { BOLD } else { REGULAR }, size);
        self.content.next_line(x, self.height - y);
        self.content.show(Str(&bytes));
        self.content.end_text();
    }

    /// A filled black rectangle, `y` from the top.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.content.rect(x, self.height - y - h, w, h);
        self.content.fill_nonzero();
    }

    /// A thin horizontal rule.
    pub fn rule(&mut self, y: f32) {
        self.rect(12.0, y, self.width - 24.0, 0.8);
    }

    /// A Code 128 barcode of `data` fitted to `max_width`, `y` from the top; returns its width.
    pub fn code128(&mut self, x: f32, y: f32, max_width: f32, height: f32, data: &str) -> anyhow::Result<f32> {
        let bars = Code128::new(format!("\u{0181}{data}"))
            .map_err(|e| anyhow::anyhow!("cannot encode {data} as Code 128: {e}"))?
            .encode();
        let module = (max_width / bars.len() as f32).min(1.6);
        let mut run_start = None;
        for (i, bar) in bars.iter().chain([&0u8]).enumerate() {
            match (bar, run_start) {
                (1, None) => run_start = Some(i),
                (0, Some(start)) => {
                    self.rect(x + start as f32 * module, y, (i - start) as f32 * module, height);
                    run_start = None;
                }
                _ => {}
            }
        }
        Ok(bars.len() as f32 * module)
    }

    /// A QR code of `data`, `size` points square, `y` from the top.
    pub fn qr(&mut self, x: f32, y: f32, size: f32, data: &str) -> anyhow::Result<()> {
        let code = QrCode::new(data.as_bytes()).map_err(|e| anyhow::anyhow!("cannot encode QR code: {e}"))?;
        let n = code.width();
        let module = size / n as f32;
        for (i, color) in code.to_colors().into_iter().enumerate() {
            if color == Color::Dark {
                let (row, col) = (i / n, i % n);
                self.rect(x + col as f32 * module, y + row as f32 * module, module, module);
            }
        }
        Ok(())
    }

    /// The finished PDF file.
    pub fn finish(self, title: &str) -> Vec<u8> {
        let (catalog, tree, page, regular, bold, contents, info) = (
            Ref::new(1),
            Ref::new(2),
            Ref::new(3),
            Ref::new(4),
            Ref::new(5),
            Ref::new(6),
            Ref::new(7),
        );
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids([page]).count(1);
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, self.width, self.height));
        p.parent(tree);
        p.contents(contents);
        let mut resources = p.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        p.finish();
        pdf.type1_font(regular).base_font(Name(b"Helvetica"));
        pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold"));
        let title = ascii(title);
        pdf.document_info(info)
            .title(pdf_writer::TextStr(std::str::from_utf8(&title).unwrap_or("depot")));
        pdf.stream(contents, &self.content.finish());
        pdf.finish()
    }
}
