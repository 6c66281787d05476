//! Shipments and labels, read back the way a printer or scanner would: poppler's pdfinfo, pdftotext and
//! pdftoppm, and zbarimg decoding the barcodes and the QR code.
use crate::helpers::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} is needed (apt-get install poppler-utils zbar-tools): {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PDF's page size, text, and every code zbarimg finds on its 300 dpi rendering.
fn read_pdf(dir: &Path, name: &str, pdf: &[u8]) -> (String, String, Vec<String>) {
    let file = dir.join(format!("{name}.pdf"));
    std::fs::write(&file, pdf).unwrap();
    let file = file.to_str().unwrap();
    let info = tool("pdfinfo", &[file]);
    let text = tool("pdftotext", &["-layout", file, "-"]);
    let png = dir.join(name);
    tool(
        "pdftoppm",
        &["-r", "300", "-png", "-singlefile", file, png.to_str().unwrap()],
    );
    let codes = tool("zbarimg", &["--quiet", "--raw", &format!("{}.png", png.display())]);
    (info, text, codes.lines().map(str::to_string).collect())
}

async fn shipped(app: &TestApp) -> String {
    let number = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0107").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "diagnosing", json!({})).await;
    app.step(
        FE,
        &number,
        "approved",
        json!({"fault_code": "PSU", "replacement_kind": "whole_unit"}),
    )
    .await;
    app.step(
        CAM,
        &number,
        "replacement_shipped",
        json!({"replacement_serial": "CN-CAM-S002", "carrier": "ups",
        "tracking_number": "1z 999aa1 0123456784", "packages": 1, "weight_kg": 31.5}),
    )
    .await;
    number
}

#[tokio::test]
async fn the_return_label_reads_back_with_its_barcodes_and_qr_code() {
    let app = spawn_app().await;
    let number = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0106").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = app.download(CW_TECH, &format!("/api/v1/rmas/{number}/label.pdf")).await;
    assert_eq!(status, 409, "no label before the replacement ships");

    let number = shipped(&app).await;
    let rma = app.rma(&number).await;
    assert_eq!(
        (
            rma["shipments"][0]["carrier"].as_str(),
            rma["shipments"][0]["tracking_number"].as_str()
        ),
        (Some("UPS"), Some("1Z999AA10123456784"))
    );
    assert_eq!(rma["shipments"][0]["weight_kg"], 31.5);

    let dir = tempfile::tempdir().unwrap();
    let (status, pdf) = app.download(CW_TECH, &format!("/api/v1/rmas/{number}/label.pdf")).await;
    assert_eq!(status, 200);
    let (info, text, codes) = read_pdf(dir.path(), "label", &pdf);
    assert!(
        info.lines()
            .any(|l| l.starts_with("Pages:") && l.trim_end().ends_with(" 1")),
        "one page: {info}"
    );
    assert!(info.contains("288 x 432 pts"), "4x6 inches: {info}");
    for needle in [
        number.as_str(),
        "CN-ORD1-0107",
        "CN-5000",
        "CoreWeave ORD1",
        "1200 W Cermak Rd",
        "Chicago, IL 60608",
        "Campbell depot",
        "1 Winchester Blvd",
        "Campbell, CA 95008",
        "PACKAGE 1 OF 1",
    ] {
        assert!(text.contains(needle), "label text lacks {needle}:\n{text}");
    }
    let url = format!("{BASE_URL}/rmas/{number}");
    for code in [number.as_str(), "CN-ORD1-0107", url.as_str()] {
        assert!(
            codes.iter().any(|c| c == code),
            "zbarimg did not find {code}: {codes:?}"
        );
    }

    let (status, zpl) = app.download(FE, &format!("/api/v1/rmas/{number}/label.zpl")).await;
    assert_eq!(status, 200);
    let zpl = String::from_utf8(zpl).unwrap();
    assert!(zpl.starts_with("^XA") && zpl.trim_end().ends_with("^XZ"), "{zpl}");
    assert!(
        zpl.contains(&format!("^BCN,120,Y,N,N^FD{number}^FS")) && zpl.contains("^FDCN-ORD1-0107^FS"),
        "{zpl}"
    );
    assert!(zpl.contains(&format!("^BQN,2,6^FDQA,{url}^FS")), "{zpl}");
    assert!(
        zpl.contains("1200 W Cermak Rd") && zpl.contains("Campbell depot"),
        "{zpl}"
    );

    // Another organization never sees it; with a return shipped, the label follows the chosen depot.
    for path in ["label.pdf", "label.zpl", "packing-slip.pdf"] {
        let (status, _) = app.download(XAI_TECH, &format!("/api/v1/rmas/{number}/{path}")).await;
        assert_eq!(status, 404, "{path}");
    }
    app.step(CW_TECH, &number, "replacement_delivered", json!({})).await;
    app.step(
        CW_TECH,
        &number,
        "swapped",
        json!({"installed_serial": "CN-CAM-S002", "pulled_serial": "CN-ORD1-0107"}),
    )
    .await;
    app.step(
        CW_TECH,
        &number,
        "return_shipped",
        json!({"carrier": "FedEx", "tracking_number": "123456789012", "depot": "SAC", "packages": 2}),
    )
    .await;
    let (_, pdf) = app.download(CW_TECH, &format!("/api/v1/rmas/{number}/label.pdf")).await;
    let (_, text, _) = read_pdf(dir.path(), "label-sac", &pdf);
    assert!(
        text.contains("Sacramento depot") && text.contains("PACKAGE 1 OF 2") && text.contains("FedEx 123456789012"),
        "{text}"
    );
}

#[tokio::test]
async fn the_packing_slip_says_what_is_in_the_box_and_how_to_swap_it() {
    let app = spawn_app().await;
    let number = shipped(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (status, pdf) = app
        .download(CW_TECH, &format!("/api/v1/rmas/{number}/packing-slip.pdf"))
        .await;
    assert_eq!(status, 200);
    let (_, text, codes) = read_pdf(dir.path(), "slip", &pdf);
    for needle in [
        "CN-CAM-S002",
        "CN-ORD1-0107",
        "Drain the node",
        "return label",
        "Campbell depot",
        "UPS 1Z999AA10123456784",
    ] {
        assert!(text.contains(needle), "slip lacks {needle}:\n{text}");
    }
    assert!(codes.iter().any(|c| c == &number), "{codes:?}");
}

#[tokio::test]
async fn tracking_numbers_are_checked_against_the_carrier() {
    let app = spawn_app().await;
    let number = app.open(FE, "cw-ord1", "CN-ORD1-0108").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "diagnosing", json!({})).await;
    app.step(
        FE,
        &number,
        "approved",
        json!({"fault_code": "PSU", "replacement_kind": "whole_unit"}),
    )
    .await;
    let before = app.snapshot(&number).await;
    let ship = |carrier: &str, tracking: &str| json!({"replacement_serial": "CN-CAM-S003", "carrier": carrier, "tracking_number": tracking});
    let err = app
        .try_move(CAM, &number, "replacement_shipped", ship("UPS", "123456789012"))
        .await
        .expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("1Z followed by 16"),
        "{err}"
    );
    let err = app
        .try_move(CAM, &number, "replacement_shipped", ship("FedEx", "1Z999AA10123456784"))
        .await
        .expect(422);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("12, 15, 20 or 22 digits"),
        "{err}"
    );
    let err = app
        .try_move(CAM, &number, "replacement_shipped", ship("Pigeon Post", "1234"))
        .await
        .expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("unknown carrier"),
        "{err}"
    );
    let mut bad_packages = ship("DHL", "1234567890");
    bad_packages["packages"] = json!(0);
    app.try_move(CAM, &number, "replacement_shipped", bad_packages)
        .await
        .expect(422);
    assert_eq!(app.snapshot(&number).await, before);
    let ok = app
        .step(CAM, &number, "replacement_shipped", ship("DHL", "1234567890"))
        .await;
    assert_eq!(
        ok["shipments"][0]["tracking_url"],
        "https://www.dhl.com/en/express/tracking.html?AWB=1234567890"
    );
}
