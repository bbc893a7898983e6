//! The command line: arguments, exit codes and error messages (no server needed).

use std::process::{Command, Output};

fn callsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callsim"))
        .args(args)
        .output()
        .expect("callsim runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A port on 127.0.0.1 that nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn help_lists_the_three_commands() {
    let out = callsim(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["call", "load", "scenario"] {
        assert!(text.contains(command), "{text}");
    }
    let out = callsim(&["call", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--dialect",
        "--audio",
        "--out",
        "--param",
        "--tail-ms",
        "--json",
    ] {
        assert!(text.contains(flag), "{flag}: {text}");
    }
}

#[test]
fn unknown_dialects_and_bad_params_are_usage_errors() {
    let out = callsim(&["call", "ws://127.0.0.1:1/", "--dialect", "skype"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown dialect"), "{}", stderr(&out));
    let out = callsim(&[
        "call",
        "ws://127.0.0.1:1/",
        "--dialect",
        "twilio",
        "--param",
        "novalue",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("KEY=VALUE"), "{}", stderr(&out));
}

#[test]
fn a_refused_connection_exits_with_2() {
    let url = format!("ws://127.0.0.1:{}/media", closed_port());
    let out = callsim(&["call", &url, "--dialect", "twilio", "--tail-ms", "100"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[test]
fn options_a_carrier_does_not_offer_exit_with_2() {
    let url = format!("ws://127.0.0.1:{}/media", closed_port());
    let out = callsim(&[
        "call",
        &url,
        "--dialect",
        "twilio",
        "--sample-rate",
        "16000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("twilio streams mulaw_8000"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn load_failures_are_reported_and_exit_with_1() {
    let url = format!("ws://127.0.0.1:{}/media", closed_port());
    let out = callsim(&[
        "load",
        &url,
        "--dialect",
        "exotel",
        "--calls",
        "2",
        "--duration",
        "0.2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["connect_failures"], 2);
    assert_eq!(report["calls"], 2);
}

#[test]
fn scenario_files_are_checked() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("callsim-cli-bad.toml");
    std::fs::write(
        &file,
        "url = \"ws://127.0.0.1:1/\"\ndialect = \"twilio\"\n[[steps]]\nstep = \"dance\"\n",
    )
    .expect("write");
    let out = callsim(&["scenario", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("dance"), "{}", stderr(&out));

    let missing = dir.join("callsim-cli-missing.toml");
    let out = callsim(&["scenario", missing.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
}
