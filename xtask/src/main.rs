//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: system packages, `fmt --check`, clippy with warnings denied, the whole test
//!   suite, the provider examples offline, and rustdoc with warnings denied: what CI runs.
//! - `test`: system packages, then the whole test suite and the provider examples with
//!   no keys (each against its emulator).
//! - `bench [criterion args]`: every criterion benchmark in the workspace.
//! - `deps`: checks the system packages the tests need (`.ci/packages.txt`) and
//!   installs the missing ones with apt-get when running as root.
//! - `models [dir]`: fetches the Silero VAD model (`silero-vad` 6.2.3 from PyPI, with
//!   pip) into `dir` (default `models/`), for `voxline-vad`'s `silero` feature.
//! - `load [--quick]`: the `callsim load` sweep against `echo-bot --immediate-echo`,
//!   server pinned to CPU 0 and callsim to CPU 1, printing the table for
//!   `docs/benchmarks.md`.
//! - `load-bridge [--quick]`: concurrent `bridge` calls against the Gemini Live
//!   emulator, bridge on CPU 0 and driver on CPU 1, printing the tables for
//!   `docs/benchmarks.md`.
//! - `load-agent [--quick]`: agent-server (CPU 0) against the provider emulators and
//!   callsim (CPU 1): its own turn latency and its capacity, as tables.
//! - `fuzz [seconds]`: runs every cargo-fuzz target in `fuzz/` for that long (default
//!   60 s each); needs a nightly toolchain and `cargo install cargo-fuzz`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bridge_load;
mod load;
mod load_agent;
mod procs;

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => {
            deps()?;
            test()
        }
        Some("bench") => bench(&args[1..]),
        Some("deps") => deps(),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str).unwrap_or("60")),
        Some("load") => load::sweep(args.get(1).is_some_and(|a| a == "--quick")),
        Some("load-bridge") => bridge_load::sweep(args.get(1).is_some_and(|a| a == "--quick")),
        Some("load-agent") => load_agent::sweep(args.get(1).is_some_and(|a| a == "--quick")),
        Some("models") => models(Path::new(
            args.get(1).map(String::as_str).unwrap_or("models"),
        )),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 ci      system packages, fmt --check, clippy -D warnings, all tests, docs -D warnings\n  \
                 test    system packages, then all tests\n  \
                 bench   every criterion benchmark (extra arguments go to criterion)\n  \
                 deps    check and install the system packages the tests need\n  \
                 fuzz    run every fuzz target for N seconds (default 60; needs nightly and cargo-fuzz)\n  \
                 load    callsim load sweep against echo-bot --immediate-echo (taskset; --quick for a short run)\n  \
                 load-bridge  concurrent bridged calls against the Gemini emulator (taskset; --quick)\n  \
                 load-agent  agent-server latency and capacity with the emulators (taskset; --quick)\n  \
                 models  fetch the Silero VAD model into a folder (default models/; needs python3 and pip)"
            );
            bail!("no command given");
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn ci() -> Result<()> {
    deps()?;
    step("format", cargo(&["fmt", "--all", "--", "--check"]))?;
    step(
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    test()?;
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    step("docs", doc)?;
    println!("xtask ci: all checks passed");
    Ok(())
}

fn test() -> Result<()> {
    step("tests", cargo(&["test", "--workspace", "--all-features"]))?;
    // A newcomer runs the provider examples with no keys: each must then start its
    // emulator and work offline.
    for example in [
        "deepgram",
        "elevenlabs",
        "openai",
        "azure",
        "gemini_live",
        "openai_realtime",
    ] {
        let mut run = cargo(&["run", "--quiet", "--example", example]);
        for key in PROVIDER_KEYS {
            run.env_remove(key);
        }
        run.stdout(std::process::Stdio::null());
        step(&format!("example {example} (offline)"), run)?;
    }
    Ok(())
}

/// Environment variables that switch the examples to the real provider APIs.
const PROVIDER_KEYS: [&str; 7] = [
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "DEEPGRAM_API_KEY",
    "ELEVENLABS_API_KEY",
    "OPENAI_API_KEY",
    "AZURE_SPEECH_KEY",
    "AZURE_SPEECH_REGION",
];

fn bench(extra: &[String]) -> Result<()> {
    let mut command = cargo(&["bench", "--workspace", "--all-features"]);
    if !extra.is_empty() {
        command.arg("--").args(extra);
    }
    step("benchmarks", command)
}

/// The Silero VAD release the project is tested with, and the files taken from it.
const SILERO_PACKAGE: &str = "silero-vad==6.2.3";
/// SHA-256 of `silero_vad_openvino_16k.onnx` in that release.
const SILERO_SHA256: &str = "7776b81ad1b0350c15d7f1555943b9232eb53e9ca5d989c6d0cea9ebc8664d87";
const SILERO_FILES: [(&str, &str); 2] = [
    (
        "silero_vad/data/silero_vad_openvino_16k.onnx",
        "silero_vad_openvino_16k.onnx",
    ),
    (
        "silero_vad-6.2.3.dist-info/licenses/LICENSE",
        "LICENSE-silero-vad.txt",
    ),
];

fn models(dir: &Path) -> Result<()> {
    let download = env::temp_dir().join(format!("voxline-models-{}", std::process::id()));
    fs::create_dir_all(&download)?;
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        SILERO_PACKAGE,
        "-d",
    ])
    .arg(&download);
    step("download silero-vad", pip).context("needs python3 with pip")?;
    let wheel = fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no wheel")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // A wheel is a zip file; Python's zipfile extracts without another tool.
    // It also prints the model's SHA-256, checked against the release's.
    let script = "import hashlib, sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  for i in range(2, len(sys.argv), 2):\n    \
                  open(sys.argv[i + 1], 'wb').write(z.read(sys.argv[i]))\n\
                  print(hashlib.sha256(z.read(sys.argv[2])).hexdigest())\n";
    let mut extract = Command::new("python3");
    extract.args(["-c", script]).arg(&wheel);
    for (inside, name) in SILERO_FILES {
        extract.arg(inside).arg(dir.join(name));
    }
    println!("xtask: extract the model: {extract:?}");
    let output = extract.output().context("cannot run python3")?;
    let _ = fs::remove_dir_all(&download);
    if !output.status.success() {
        bail!(
            "extracting the model failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let digest = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if digest != SILERO_SHA256 {
        bail!("the downloaded model's SHA-256 is {digest}, expected {SILERO_SHA256}");
    }
    let model = dir.join(SILERO_FILES[0].1);
    println!(
        "xtask: Silero VAD model at {} (MIT licence beside it); pass this path to SileroModel::load",
        model.display()
    );
    Ok(())
}

fn fuzz(seconds: &str) -> Result<()> {
    let seconds: u32 = seconds
        .parse()
        .context("fuzz: the argument is seconds per target")?;
    let toolchains = Command::new("rustup").args(["toolchain", "list"]).output();
    let has_nightly =
        toolchains.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("nightly"));
    if !has_nightly {
        bail!("fuzzing needs a nightly toolchain: rustup toolchain install nightly");
    }
    let mut targets: Vec<String> = fs::read_dir("fuzz/fuzz_targets")
        .context("cannot list fuzz/fuzz_targets")?
        .filter_map(|entry| entry.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .collect();
    targets.sort();
    for target in targets {
        let mut command = Command::new("cargo");
        command.args([
            "+nightly",
            "fuzz",
            "run",
            &target,
            "--",
            &format!("-max_total_time={seconds}"),
        ]);
        step(&format!("fuzz {target}"), command)
            .context("is cargo-fuzz installed? cargo install cargo-fuzz --locked")?;
    }
    Ok(())
}

/// System packages from `.ci/packages.txt`: `<debian package> <command it provides>`
/// per line, `#` comments.
fn deps() -> Result<()> {
    let list = fs::read_to_string(".ci/packages.txt").context("cannot read .ci/packages.txt")?;
    let missing: Vec<&str> = list
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let package = parts.next()?;
            let program = parts.next().unwrap_or(package);
            (!on_path(program)).then_some(package)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    if !is_root() || !on_path("apt-get") {
        bail!(
            "the tests need system packages that are missing: {missing:?}\ninstall them with: sudo sh -c '{install}'"
        );
    }
    println!("xtask: installing system packages {missing:?}");
    let mut command = Command::new("sh");
    command
        .args(["-c", &install])
        .env("DEBIAN_FRONTEND", "noninteractive");
    step("system packages", command)
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args);
    command
}

fn step(name: &str, mut command: Command) -> Result<()> {
    println!("xtask: {name}: {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}
