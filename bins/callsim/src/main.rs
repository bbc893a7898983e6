//! `callsim`: the carrier's side of a phone call, for demos, tests and load.
//!
//! ```text
//! callsim call URL --dialect D [--audio in.wav] [--out reply.wav] [--param k=v]... [--tail-ms N] [--json]
//! callsim load URL --calls N --duration S [--ramp S] --dialect D [--json]
//! callsim scenario FILE [--json]
//! ```
//!
//! Exits with 0 when the call was clean (or every step passed, or no load call
//! failed), 1 when the server made protocol violations, a step failed or load calls
//! failed, and 2 when callsim could not run at all. Reports go to stdout, progress and
//! errors to stderr. For load runs with thousands of calls, raise the file descriptor
//! limit first (`ulimit -n 65536`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use voxline_testkit::callsim::{self, Audio, CallOptions, Dialect, LoadOptions, Scenario, TurnVad};

#[derive(Debug, Parser)]
#[command(
    name = "callsim",
    version,
    about = "Simulates telephony carriers calling a Voxline server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Place one call streaming a WAV file and report what the caller heard.
    Call(CallArgs),
    /// Run many concurrent calls against a server in immediate-echo mode.
    Load(LoadArgs),
    /// Run a scripted call from a TOML file.
    Scenario(ScenarioArgs),
}

#[derive(Debug, Args)]
struct LineArgs {
    /// The carrier to simulate: exotel, smartflo, twilio, plivo, telnyx or vonage; or
    /// voxline, Voxline's own browser/app protocol (point it at /ws/flexible).
    #[arg(long)]
    dialect: Dialect,
    /// A per-call parameter, delivered as the carrier delivers them (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Line sample rate (Exotel 8000/16000/24000, Plivo L16 8000/16000, Vonage 16000/8000,
    /// Voxline PCM16 8000/16000/24000/48000).
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Line encoding where the carrier offers a choice (Plivo: mulaw or l16; Voxline:
    /// pcm16 or mulaw).
    #[arg(long)]
    encoding: Option<String>,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// Server URL (ws:// or wss://).
    url: String,
    #[command(flatten)]
    line: LineArgs,
    /// What the caller says (mono WAV: PCM16, mu-law or A-law, any rate).
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Write what the caller heard here (PCM16 WAV at the line rate).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write what callsim sent here, on the same timeline as --out.
    #[arg(long)]
    sent: Option<PathBuf>,
    /// Keep the line open this long after the audio, for the bot to finish.
    #[arg(long, default_value_t = 3000)]
    tail_ms: u64,
    /// Silence that ends a caller turn, for latency measurement.
    #[arg(long, default_value_t = 300)]
    turn_stop_ms: u64,
    /// Find caller turns by level instead of WebRTC's VAD (for synthetic audio).
    #[arg(long)]
    energy_vad: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Server URL (ws:// or wss://), in immediate-echo mode.
    url: String,
    #[command(flatten)]
    line: LineArgs,
    /// Concurrent calls.
    #[arg(long)]
    calls: usize,
    /// Seconds each call streams.
    #[arg(long)]
    duration: f64,
    /// Seconds over which the call starts are spread.
    #[arg(long, default_value_t = 0.0)]
    ramp: f64,
    /// Milliseconds each call waits for outstanding echoes after its last frame.
    #[arg(long, default_value_t = 1000)]
    drain_ms: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ScenarioArgs {
    /// The scenario (TOML); relative WAV paths are read from its folder.
    file: PathBuf,
    /// Call this URL instead of the file's.
    #[arg(long)]
    url: Option<String>,
    /// Write what the caller heard here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn secs(value: f64, name: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("--{name} {value} is not a duration"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The library's warnings (protocol oddities, reconnects) on stderr; RUST_LOG to tune.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callsim: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("callsim: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command; `Ok(false)` when the server misbehaved.
async fn run(command: Command) -> Result<bool> {
    match command {
        Command::Call(args) => call(args).await,
        Command::Load(args) => load(args).await,
        Command::Scenario(args) => scenario(args).await,
    }
}

fn apply_line(mut options: CallOptions, line: &LineArgs) -> Result<CallOptions> {
    options.params.extend(line.params.iter().cloned());
    options.sample_rate = line.sample_rate;
    if let Some(e) = &line.encoding {
        options.encoding = Some(e.parse().with_context(|| format!("--encoding {e}"))?);
    }
    Ok(options)
}

async fn call(args: CallArgs) -> Result<bool> {
    let mut options = apply_line(CallOptions::new(&args.url, args.line.dialect), &args.line)?
        .tail(Duration::from_millis(args.tail_ms))
        .turn_stop(Duration::from_millis(args.turn_stop_ms));
    if args.energy_vad {
        options = options.turn_vad(TurnVad::Energy);
    }
    if let Some(path) = &args.audio {
        let audio = Audio::from_wav(path).with_context(|| format!("reading {}", path.display()))?;
        eprintln!(
            "callsim: calling {} as {} with {:.1} s of audio",
            args.url,
            args.line.dialect,
            audio.duration().as_secs_f64()
        );
        options = options.audio(audio);
    } else {
        eprintln!(
            "callsim: calling {} as {} (silence only)",
            args.url, args.line.dialect
        );
    }
    let report = callsim::call(options).await?;
    if let Some(out) = &args.out {
        report.write_heard_wav(out)?;
        eprintln!("callsim: wrote what the caller heard to {}", out.display());
    }
    if let Some(sent) = &args.sent {
        report.write_sent_wav(sent)?;
        eprintln!("callsim: wrote what callsim sent to {}", sent.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(report.is_clean())
}

async fn load(args: LoadArgs) -> Result<bool> {
    if args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    let mut options = LoadOptions::new(
        &args.url,
        args.line.dialect,
        args.calls,
        secs(args.duration, "duration")?,
    )
    .ramp(secs(args.ramp, "ramp")?)
    .drain(Duration::from_millis(args.drain_ms));
    options.params.extend(args.line.params.iter().cloned());
    options.sample_rate = args.line.sample_rate;
    if let Some(e) = &args.line.encoding {
        options.encoding = Some(e.parse().with_context(|| format!("--encoding {e}"))?);
    }
    eprintln!(
        "callsim: {} {} calls of {:.1} s against {}, ramp {:.1} s",
        args.calls, args.line.dialect, args.duration, args.url, args.ramp
    );
    let report = callsim::load(options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(report.failures() == 0)
}

async fn scenario(args: ScenarioArgs) -> Result<bool> {
    let mut scenario = Scenario::from_toml_file(&args.file)?;
    if let Some(url) = args.url {
        scenario.options.url = url;
    }
    eprintln!(
        "callsim: scenario {:?}: {} steps against {} as {}",
        scenario.name,
        scenario.steps.len(),
        scenario.options.url,
        scenario.options.dialect
    );
    let report = callsim::run_scenario(scenario).await?;
    if let Some(out) = &args.out {
        report.call.write_heard_wav(out)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(report.passed())
}
