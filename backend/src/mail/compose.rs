//! Rendering a notification's subject, plain-text and HTML parts from its templates.
use serde::Serialize;
use std::sync::LazyLock;

macro_rules! email_templates {
    ($($name:literal),* $(,)?) => {
        [$(
            (concat!($name, "/subject.txt"), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/emails/", $name, "/subject.txt"))),
            (concat!($name, "/body.txt"), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/emails/", $name, "/body.txt"))),
            (concat!($name, "/body.html"), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/emails/", $name, "/body.html"))),
        )*]
    };
}

static TEMPLATES: LazyLock<tera::Tera> = LazyLock::new(|| {
    let mut tera = tera::Tera::default();
    tera.add_raw_templates(email_templates![
        "rma_approved",
        "replacement_shipped",
        "return_reminder",
        "unit_received",
        "rma_closed",
        "sla_breach",
        "low_stock",
        "shipment_trouble",
        "dead_on_arrival",
    ])
    .expect("email templates parse");
    tera.autoescape_on(vec![".html"]);
    tera
});

/// A rendered message.
#[derive(Debug, Clone)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders the three parts of `template` with `ctx`.
pub fn compose(template: &str, ctx: &impl Serialize) -> anyhow::Result<Composed> {
    let ctx = tera::Context::from_serialize(ctx)?;
    let render = |part: &str| {
        TEMPLATES
            .render(&format!("{template}/{part}"), &ctx)
            .map_err(|e| anyhow::anyhow!("rendering {template}/{part}: {e:?}"))
    };
    let subject = render("subject.txt")?.split_whitespace().collect::<Vec<_>>().join(" ");
    let html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;color:#0f172a\">{}</body></html>",
        render("body.html")?
    );
    Ok(Composed {
        subject,
        text: render("body.txt")?,
        html,
    })
}
