//! The `depot` binary as an operator uses it: help, migrate, idempotent fixtures, tokens, serve and
//! graceful shutdown on SIGTERM.
// Shared with the other process-level tests, which use parts this one does not.
#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use support::{call, serve};

fn depot(dir: &Path) -> Command {
    support::depot(&format!("sqlite://{}?mode=rwc", dir.join("cli.db").display()))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn operator_commands_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let help = run(depot(dir.path()).arg("--help"));
    for sub in ["migrate", "load-fixtures", "serve", "token"] {
        assert!(help.contains(sub), "--help lacks {sub}: {help}");
    }
    run(depot(dir.path()).arg("migrate"));
    let first = run(depot(dir.path()).arg("load-fixtures"));
    assert!(first.contains("7 new users"), "{first}");
    let second = run(depot(dir.path()).arg("load-fixtures"));
    assert!(
        second.contains("0 new units, 0 new users"),
        "loading twice adds nothing: {second}"
    );
    let elsewhere = run(depot(dir.path()).args(["load-fixtures", "--dir", "/nonexistent"]));
    assert!(
        elsewhere.contains("0 new units, 0 new users"),
        "the built-in demo data is the same: {elsewhere}"
    );
    let out = run(depot(dir.path()).args(["token", "create", "fe@vast.example"]));
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("dpt_"), "{out}");
    let bad = depot(dir.path())
        .args(["token", "create", "nobody@example.com"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let mut server = depot(dir.path())
        .arg("serve")
        .env("DEPOT_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first_line = lines.next().unwrap().unwrap();
    let url = first_line.rsplit(' ').next().unwrap().to_string();
    let banner: Vec<String> = lines.by_ref().take(7).map(|l| l.unwrap()).collect();
    assert!(banner.iter().any(|l| l.contains("depot-demo")), "{banner:?}");
    assert!(banner.iter().any(|l| l.contains("dctech@xai.example")), "{banner:?}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let health = client.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let list = client
            .get(format!("{url}/api/v1/rmas"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), 200);
    });
    let revoked = run(depot(dir.path()).args(["token", "revoke", "fe@vast.example"]));
    assert!(revoked.contains("revoked 1 token"), "{revoked}");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let list = client
            .get(format!("{url}/api/v1/rmas"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), 401, "a revoked token no longer works");
    });
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

#[test]
fn a_backup_taken_while_serving_restores_to_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    run(depot(dir.path()).arg("load-fixtures"));
    let token = support::token(depot(dir.path()), "fe@vast.example");
    let (mut live, url) = serve(depot(dir.path()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let open = |serial: &'static str| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let body =
                serde_json::json!({"site": "cw-ord1", "serial": serial, "severity": "sev2", "symptom": "no POST"});
            let (status, rma) = call(&client, &token, "POST", format!("{url}/api/v1/rmas"), Some(body)).await;
            assert_eq!(status, 201);
            rma["number"].as_str().unwrap().to_string()
        }
    };
    let get = |url: String, path: String| {
        let (client, token) = (client.clone(), token.clone());
        async move { call(&client, &token, "GET", format!("{url}{path}"), None).await }
    };
    let number = rt.block_on(async {
        let number = open("CN-ORD1-0101").await;
        let step = serde_json::json!({"to": "diagnosing", "version": 1});
        let (status, _) = call(
            &client,
            &token,
            "POST",
            format!("{url}/api/v1/rmas/{number}/transitions"),
            Some(step),
        )
        .await;
        assert_eq!(status, 200);
        number
    });

    let backup = dir.path().join("backup.db");
    let said = run(depot(dir.path()).arg("backup").arg(&backup));
    assert!(said.contains("backed up"), "{said}");
    let again = depot(dir.path()).arg("backup").arg(&backup).output().unwrap();
    assert!(!again.status.success(), "a backup never overwrites a file");
    // Written after the backup: not in it.
    let later = rt.block_on(open("CN-ORD1-0102"));
    let (original, original_events) = rt.block_on(async {
        (
            get(url.clone(), format!("/api/v1/rmas/{number}")).await,
            get(url.clone(), format!("/api/v1/rmas/{number}/events")).await,
        )
    });

    let restored_db = dir.path().join("restored.db");
    let restored = |mut cmd: Command| {
        cmd.env("DATABASE_URL", format!("sqlite://{}?mode=rwc", restored_db.display()));
        cmd
    };
    let said = run(restored(depot(dir.path())).arg("restore").arg(&backup));
    assert!(said.contains("restored"), "{said}");
    let twice = restored(depot(dir.path()))
        .arg("restore")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        !twice.status.success(),
        "restoring into a database with records is refused"
    );
    let (mut copy, copy_url) = serve(restored(depot(dir.path())));
    rt.block_on(async {
        let (status, rma) = get(copy_url.clone(), format!("/api/v1/rmas/{number}")).await;
        assert_eq!(status, 200);
        for field in [
            "number",
            "status",
            "version",
            "serial",
            "site",
            "created_at",
            "updated_at",
        ] {
            assert_eq!(rma[field], original.1[field], "{field} round-trips");
        }
        let events = get(copy_url.clone(), format!("/api/v1/rmas/{number}/events")).await;
        assert_eq!(events, original_events, "the history round-trips");
        let (status, _) = get(copy_url.clone(), format!("/api/v1/rmas/{later}")).await;
        assert_eq!(status, 404, "what came after the backup is not in it");
    });
    for server in [&mut live, &mut copy] {
        let _ = server.kill();
        let _ = server.wait();
    }
}

#[test]
fn schemathesis_finds_no_5xx_and_no_answer_off_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    run(depot(dir.path()).arg("load-fixtures"));
    let token = support::token(depot(dir.path()), "fe@vast.example");
    let (mut server, url) = serve(depot(dir.path()));
    // A real RMA, so the operations on one are exercised past their 404.
    let number = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let body =
            serde_json::json!({"site": "cw-ord1", "serial": "CN-ORD1-0101", "severity": "sev2", "symptom": "st"});
        let (_, rma) = call(
            &reqwest::Client::new(),
            &token,
            "POST",
            format!("{url}/api/v1/rmas"),
            Some(body),
        )
        .await;
        rma["number"].as_str().unwrap().to_string()
    });
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, format!("[parameters]\n\"path.number\" = \"{number}\"\n")).unwrap();
    let out = Command::new("python3")
        .current_dir(dir.path())
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(&config)
        .args([
            "run",
            &format!("{url}/api/v1/openapi.json"),
            "--checks",
            "not_a_server_error,response_schema_conformance",
        ])
        .args(["--max-examples", "25", "-H", &format!("Authorization: Bearer {token}")])
        .output()
        .expect("schemathesis is installed (pip install -r tests/requirements.txt; make test does)");
    let report = String::from_utf8_lossy(&out.stdout);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "schemathesis ({}) found problems:\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = report.lines().find(|l| l.contains(" generated, ")).unwrap_or_default();
    assert!(cases.contains("passed") && !cases.contains("failed"), "{report}");
    eprintln!("schemathesis: {}", cases.trim());
}

#[test]
fn csv_import_checks_every_row_and_export_is_formula_safe() {
    let dir = tempfile::tempdir().unwrap();
    run(depot(dir.path()).arg("load-fixtures"));
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let stock = || run(depot(dir.path()).args(["export", "stock"]));
    let before = stock();

    // One bad row among good ones: nothing goes in, and the error names its line.
    let bad = write(
        "bad-units.csv",
        "serial,part,condition,depot,site\nCSV-0001,CN-5000,new,CAM,\nCSV-0002,NO-SUCH-PART,new,CAM,\nCSV-0003,FAN-80MM,used,SAC,\n",
    );
    let out = depot(dir.path()).arg("import").arg("units").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("line 3: unknown part `NO-SUCH-PART`"), "{said}");
    assert!(
        said.contains("line 4: unknown condition `used`"),
        "every bad line is named: {said}"
    );
    assert_eq!(stock(), before, "an import with a bad row imports nothing");

    // Sites, then slots with their nodes, then spare units: all in.
    let sites = write(
        "sites.csv",
        "code,organization,name,street,city,region,postal_code,country,contact_emails,coverage,default_depot\n\
         cw-sea1,coreweave,CoreWeave SEA1,1 Main St,Seattle,WA,98101,US,dc-sea1@coreweave.example;noc@coreweave.example,24x7,SAC\n",
    );
    assert!(run(depot(dir.path()).arg("import").arg("sites").arg(&sites)).contains("imported 1 rows"));
    let slots = write(
        "slots.csv",
        "site,cluster,cluster_kind,rack,u,hostname,part,serial\n\
         cw-sea1,sea1-a,compute,R01,1,sea1-c01,CN-5000,CN-SEA1-0001\n\
         cw-sea1,sea1-a,compute,R01,3,sea1-c02,CN-5000,CN-SEA1-0002\n\
         cw-sea1,sea1-a,compute,R02,1,sea1-d01,DN-3000,DN-SEA1-0001\n",
    );
    assert!(run(depot(dir.path()).arg("import").arg("slots").arg(&slots)).contains("imported 3 rows"));
    let again = depot(dir.path())
        .arg("import")
        .arg("slots")
        .arg(&slots)
        .output()
        .unwrap();
    assert!(!again.status.success(), "importing the same slots twice is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("line 2: slot R01-U01 of cw-sea1/sea1-a exists already"));
    // Optional lot and firmware columns: failure rates per lot read them.
    let with_lots = write(
        "slots-lots.csv",
        "site,cluster,cluster_kind,rack,u,hostname,part,serial,lot,firmware\n\
         cw-sea1,sea1-a,compute,R03,1,sea1-c03,CN-5000,CN-SEA1-0003,LOT-2026-A,bmc-7.10\n\
         cw-sea1,sea1-a,compute,R03,3,sea1-c04,CN-5000,CN-SEA1-0004,,\n",
    );
    assert!(run(depot(dir.path()).arg("import").arg("slots").arg(&with_lots)).contains("imported 2 rows"));
    let units = write(
        "units.csv",
        "serial,part,condition,depot,site\nCSV-0001,CN-5000,new,CAM,\nCSV-0002,FAN-80MM,refurbished,SAC,\nCSV-0003,PSU-2000W,new,,cw-sea1\n",
    );
    assert!(run(depot(dir.path()).arg("import").arg("units").arg(&units)).contains("imported 3 rows"));
    let after = stock();
    assert!(
        after.contains("CAM,CN-5000,new,CSV-0001,") && after.contains("SAC,FAN-80MM,refurbished,CSV-0002,"),
        "{after}"
    );
    assert!(!after.contains("CSV-0003"), "a site spare is not depot stock");
    assert_eq!(after.lines().count(), before.lines().count() + 2);
    // Spares carry a lot and firmware too; units of one shelf with different lots stay apart.
    let units_with_lots = write(
        "units-lots.csv",
        "serial,part,condition,depot,site,lot,firmware\nCSV-0004,CN-5000,new,CAM,,LOT-2026-B,bmc-7.12\nCSV-0005,CN-5000,new,CAM,,,\n",
    );
    assert!(run(depot(dir.path()).arg("import").arg("units").arg(&units_with_lots)).contains("imported 2 rows"));

    // Cells a spreadsheet would run as formulas are defused.
    let (mut server, url) = serve(depot(dir.path()));
    let token = support::token(depot(dir.path()), "fe@vast.example");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let body = serde_json::json!({"site": "cw-sea1", "serial": "CN-SEA1-0001", "severity": "sev2",
            "symptom": "=HYPERLINK(\"http://evil.example\",\"click\")", "external_refs": {"ticket": "@SUM(A1)"}});
        let (status, _) = call(
            &reqwest::Client::new(),
            &token,
            "POST",
            format!("{url}/api/v1/rmas"),
            Some(body),
        )
        .await;
        assert_eq!(status, 201);
        let (status, lots) = call(
            &reqwest::Client::new(),
            &token,
            "GET",
            format!("{url}/api/v1/reliability/afr?by=lot"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let keys: Vec<&str> = lots["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap())
            .collect();
        assert!(keys.contains(&"LOT-2026-A") && keys.contains(&"(no lot)"), "{lots}");
        for (serial, lot, firmware) in [("CSV-0004", "LOT-2026-B", "bmc-7.12"), ("CSV-0005", "", "")] {
            let (status, unit) = call(
                &reqwest::Client::new(),
                &token,
                "GET",
                format!("{url}/api/v1/units/{serial}"),
                None,
            )
            .await;
            assert_eq!(status, 200);
            let (got_lot, got_firmware) = (
                unit["lot"].as_str().unwrap_or(""),
                unit["firmware"].as_str().unwrap_or(""),
            );
            assert_eq!((got_lot, got_firmware), (lot, firmware), "{unit}");
        }
    });
    let _ = server.kill();
    let _ = server.wait();
    let out_file = dir.path().join("rmas.csv");
    run(depot(dir.path()).args(["export", "rmas", "--out"]).arg(&out_file));
    let rmas = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        rmas.starts_with("number,status,severity,organization,site,serial"),
        "{rmas}"
    );
    assert!(rmas.contains("'=HYPERLINK"), "a formula is defused: {rmas}");
    assert!(
        !rmas.contains(",=HYPERLINK") && !rmas.contains(",\"=HYPERLINK"),
        "{rmas}"
    );
}
