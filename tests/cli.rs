//! The `depot` binary as an operator uses it: help, migrate, idempotent fixtures, tokens, serve and
//! graceful shutdown on SIGTERM.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn depot(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_depot"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("cli.db").display()),
        )
        .env("RUST_LOG", "warn");
    cmd
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
    assert!(first.contains("6 new users"), "{first}");
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
