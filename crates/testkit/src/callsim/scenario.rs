//! Scripted calls: a sequence of caller actions and expectations about the bot.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use voxline_audio::Encoding;

use crate::callsim::dialect::Dialect;
use crate::callsim::error::CallsimError;
use crate::callsim::options::{Audio, CallOptions, TurnVad};
use crate::callsim::report::CallReport;

/// Where a `play` step's audio comes from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AudioSource {
    /// Audio in memory.
    Audio(Audio),
    /// A WAV file, optionally a slice of it; read when the scenario starts.
    File {
        /// The file.
        path: PathBuf,
        /// Start of the slice.
        from: Option<Duration>,
        /// End of the slice.
        to: Option<Duration>,
    },
}

impl AudioSource {
    pub(crate) fn load(&self) -> Result<Audio, CallsimError> {
        match self {
            AudioSource::Audio(audio) => Ok(audio.clone()),
            AudioSource::File { path, from, to } => {
                let audio = Audio::from_wav(path)?;
                Ok(if from.is_some() || to.is_some() {
                    audio.slice(from.unwrap_or_default(), *to)
                } else {
                    audio
                })
            }
        }
    }
}

/// One step of a [`Scenario`]. Steps run one after another on the call's timeline
/// while the caller's audio keeps streaming (silence when nothing is queued).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Step {
    /// Queue audio for the caller to say. Blocking: the step ends when the audio has
    /// been sent; otherwise it ends at once and the audio plays on under the next
    /// steps (to barge in while expecting a clear, say).
    Play {
        /// The audio.
        source: AudioSource,
        /// Wait until it has all been sent.
        blocking: bool,
    },
    /// Queue silence and wait until it has been sent.
    Silence {
        /// How long.
        duration: Duration,
    },
    /// Let time pass (the line carries whatever is queued, else silence).
    Wait {
        /// How long.
        duration: Duration,
    },
    /// Pass when bot audio is heard at or after the step's start; fail after `within`.
    WaitForAudio {
        /// The limit.
        within: Duration,
    },
    /// Pass when a mark (Plivo checkpoint, Vonage notify), optionally one with this
    /// name, has been echoed and not yet matched by an earlier `WaitForMark` step
    /// (echoes are taken in order, so one that came during an earlier step still
    /// counts); fail after `within`.
    WaitForMark {
        /// The limit.
        within: Duration,
        /// The mark's name, or any mark.
        name: Option<String>,
    },
    /// Pass once no bot audio is queued or playing and none has played for `quiet`;
    /// fail after `within`.
    WaitUntilQuiet {
        /// The limit.
        within: Duration,
        /// How long the line must have been quiet.
        quiet: Duration,
    },
    /// Pass when a clear arrives within `within` of the step's start.
    ExpectClear {
        /// The limit.
        within: Duration,
    },
    /// Fail if bot audio is heard during `duration` from the step's start.
    ExpectNoAudio {
        /// How long.
        duration: Duration,
    },
    /// Pass when the server closes the socket within `within` (Exotel bots end calls
    /// that way).
    ExpectHangup {
        /// The limit.
        within: Duration,
    },
    /// Send a DTMF key press in the dialect's format.
    Dtmf {
        /// `0`-`9`, `*`, `#` or `A`-`D`.
        digit: char,
        /// Press length, where the dialect carries one (Exotel, Vonage).
        duration: Duration,
    },
    /// Hang up now: the dialect's `stop` (if it has one), then close.
    Hangup,
    /// Send a typed message (Voxline `text_message`). Fails at once in dialects without
    /// a text channel.
    SendText {
        /// What the caller writes.
        text: String,
    },
    /// Switch channels (Voxline `mode_change`), sending only the fields given. Fails at
    /// once in dialects without a text channel.
    ModeChange {
        /// Send audio (or stop sending it, as far as the bot is told).
        voice_input: Option<bool>,
        /// Send text messages.
        text_input: Option<bool>,
        /// Receive the bot's audio.
        voice_output: Option<bool>,
        /// Receive transcripts and the bot's text.
        text_output: Option<bool>,
    },
    /// Pass when a transcript (Voxline `transcript`) matching `role` (`user` or `bot`)
    /// and containing `contains` (ignoring case) has arrived and was not matched by an
    /// earlier `WaitForText` step (taken in order, so one that came during an earlier
    /// step still counts, as for [`Step::WaitForMark`]); fail after `within`. Fails at
    /// once in dialects without a text channel.
    WaitForText {
        /// `user` (the caller's transcript) or `bot`; any when `None`.
        role: Option<String>,
        /// A piece of the text, compared ignoring case; any text when `None`.
        contains: Option<String>,
        /// The limit.
        within: Duration,
    },
}

impl Step {
    /// The step's name as written in TOML (`play`, `wait_for_audio`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Step::Play { .. } => "play",
            Step::Silence { .. } => "silence",
            Step::Wait { .. } => "wait",
            Step::WaitForAudio { .. } => "wait_for_audio",
            Step::WaitForMark { .. } => "wait_for_mark",
            Step::WaitUntilQuiet { .. } => "wait_until_quiet",
            Step::ExpectClear { .. } => "expect_clear",
            Step::ExpectNoAudio { .. } => "expect_no_audio",
            Step::ExpectHangup { .. } => "expect_hangup",
            Step::Dtmf { .. } => "dtmf",
            Step::Hangup => "hangup",
            Step::SendText { .. } => "send_text",
            Step::ModeChange { .. } => "mode_change",
            Step::WaitForText { .. } => "wait_for_text",
        }
    }

    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        let ms = |d: &Duration| d.as_millis();
        match self {
            Step::Play { source, blocking } => {
                let what = match source {
                    AudioSource::Audio(a) => format!("{} ms of audio", ms(&a.duration())),
                    AudioSource::File { path, .. } => path.display().to_string(),
                };
                format!(
                    "play {what}{}",
                    if *blocking { "" } else { " (in background)" }
                )
            }
            Step::Silence { duration } => format!("silence {} ms", ms(duration)),
            Step::Wait { duration } => format!("wait {} ms", ms(duration)),
            Step::WaitForAudio { within } => format!("wait for bot audio within {} ms", ms(within)),
            Step::WaitForMark { within, name } => match name {
                Some(n) => format!("wait for mark {n:?} within {} ms", ms(within)),
                None => format!("wait for a mark within {} ms", ms(within)),
            },
            Step::WaitUntilQuiet { within, quiet } => format!(
                "wait until the bot is quiet for {} ms, within {} ms",
                ms(quiet),
                ms(within)
            ),
            Step::ExpectClear { within } => format!("expect a clear within {} ms", ms(within)),
            Step::ExpectNoAudio { duration } => {
                format!("expect no bot audio for {} ms", ms(duration))
            }
            Step::ExpectHangup { within } => {
                format!("expect the server to hang up within {} ms", ms(within))
            }
            Step::Dtmf { digit, .. } => format!("press {digit}"),
            Step::Hangup => "hang up".to_owned(),
            Step::SendText { text } => format!("send text {:?}", text),
            Step::ModeChange {
                voice_input,
                text_input,
                voice_output,
                text_output,
            } => {
                let set: Vec<String> = [
                    ("voice_input", voice_input),
                    ("text_input", text_input),
                    ("voice_output", voice_output),
                    ("text_output", text_output),
                ]
                .iter()
                .filter_map(|(k, v)| v.map(|on| format!("{k}={on}")))
                .collect();
                format!("change modes: {}", set.join(", "))
            }
            Step::WaitForText {
                role,
                contains,
                within,
            } => format!(
                "wait for a {}transcript{} within {} ms",
                role.as_ref().map(|r| format!("{r} ")).unwrap_or_default(),
                contains
                    .as_ref()
                    .map(|c| format!(" containing {c:?}"))
                    .unwrap_or_default(),
                ms(within)
            ),
        }
    }
}

/// A scripted call: call options plus steps.
///
/// ```no_run
/// use std::time::Duration;
/// use voxline_testkit::callsim::{Dialect, Scenario, run_scenario};
///
/// # async fn demo(samples: Vec<i16>) -> Result<(), voxline_testkit::callsim::CallsimError> {
/// let report = run_scenario(
///     Scenario::new("ws://127.0.0.1:8080/twilio", Dialect::Twilio)
///         .param("tenant", "abc")
///         .play_samples(samples, 8000)
///         .wait_for_audio(Duration::from_secs(5))
///         .wait_for_mark(Duration::from_secs(10))
///         .hangup(),
/// )
/// .await?;
/// assert!(report.passed(), "{report}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// The call. Its `audio`, if any, is played (blocking) before the steps.
    pub options: CallOptions,
    /// The script.
    pub steps: Vec<Step>,
    /// After a failed step, skip the rest and hang up at once (default `true`).
    pub stop_on_failure: bool,
}

macro_rules! option_setters {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $($arg: $ty),*) -> Self {
                self.options = self.options.$name($($arg),*);
                self
            }
        )*
    };
}

impl Scenario {
    /// An empty scenario calling `url` in `dialect`, with [`CallOptions::new`]'s
    /// defaults.
    pub fn new(url: impl Into<String>, dialect: Dialect) -> Self {
        Self::from_options(CallOptions::new(url, dialect))
    }

    /// An empty scenario with these call options.
    pub fn from_options(options: CallOptions) -> Self {
        Self {
            name: format!("{} scenario", options.dialect),
            options,
            steps: Vec::new(),
            stop_on_failure: true,
        }
    }

    /// Sets the name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets whether a failed step ends the scenario.
    pub fn stop_on_failure(mut self, stop: bool) -> Self {
        self.stop_on_failure = stop;
        self
    }

    option_setters! {
        /// Adds a per-call parameter (see [`CallOptions::params`]).
        param(key: impl Into<String>, value: impl Into<String>);
        /// Sets the line's sample rate.
        sample_rate(rate: u32);
        /// Sets the line's encoding.
        encoding(encoding: Encoding);
        /// Sets the tail kept open after the last step (when it is not a hangup).
        tail(tail: Duration);
        /// Sets the connect timeout.
        connect_timeout(timeout: Duration);
        /// Sets the silence that ends a caller turn.
        turn_stop(stop: Duration);
        /// Sets the detector that finds caller turns.
        turn_vad(vad: TurnVad);
        /// Sets the longest silence still counted as an underrun.
        gap_limit(limit: Duration);
    }

    /// Appends a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Plays `audio` and waits until it has been sent.
    pub fn play(self, audio: Audio) -> Self {
        self.step(Step::Play {
            source: AudioSource::Audio(audio),
            blocking: true,
        })
    }

    /// Plays samples at `sample_rate` and waits until they have been sent.
    pub fn play_samples(self, samples: impl Into<std::sync::Arc<[i16]>>, sample_rate: u32) -> Self {
        self.play(Audio::from_samples(samples, sample_rate))
    }

    /// Plays a WAV file (read when the scenario starts) and waits until it has been
    /// sent.
    pub fn play_file(self, path: impl Into<PathBuf>) -> Self {
        self.step(Step::Play {
            source: AudioSource::File {
                path: path.into(),
                from: None,
                to: None,
            },
            blocking: true,
        })
    }

    /// Starts playing `audio` and goes straight on to the next step.
    pub fn play_in_background(self, audio: Audio) -> Self {
        self.step(Step::Play {
            source: AudioSource::Audio(audio),
            blocking: false,
        })
    }

    /// Sends `duration` of silence.
    pub fn silence(self, duration: Duration) -> Self {
        self.step(Step::Silence { duration })
    }

    /// Lets `duration` pass.
    pub fn wait(self, duration: Duration) -> Self {
        self.step(Step::Wait { duration })
    }

    /// Expects bot audio within `within`.
    pub fn wait_for_audio(self, within: Duration) -> Self {
        self.step(Step::WaitForAudio { within })
    }

    /// Expects any mark echoed within `within`.
    pub fn wait_for_mark(self, within: Duration) -> Self {
        self.step(Step::WaitForMark { within, name: None })
    }

    /// Expects the mark `name` echoed within `within`.
    pub fn wait_for_named_mark(self, name: impl Into<String>, within: Duration) -> Self {
        self.step(Step::WaitForMark {
            within,
            name: Some(name.into()),
        })
    }

    /// Expects the bot's playback to finish (200 ms of quiet) within `within`.
    pub fn wait_until_quiet(self, within: Duration) -> Self {
        self.step(Step::WaitUntilQuiet {
            within,
            quiet: Duration::from_millis(200),
        })
    }

    /// Expects a clear within `within` of this step's start.
    pub fn expect_clear(self, within: Duration) -> Self {
        self.step(Step::ExpectClear { within })
    }

    /// Expects no bot audio for `duration`.
    pub fn expect_no_audio(self, duration: Duration) -> Self {
        self.step(Step::ExpectNoAudio { duration })
    }

    /// Expects the server to close the socket within `within`.
    pub fn expect_hangup(self, within: Duration) -> Self {
        self.step(Step::ExpectHangup { within })
    }

    /// Presses a DTMF key (100 ms).
    pub fn dtmf(self, digit: char) -> Self {
        self.step(Step::Dtmf {
            digit,
            duration: Duration::from_millis(100),
        })
    }

    /// Hangs up.
    pub fn hangup(self) -> Self {
        self.step(Step::Hangup)
    }

    /// Sends a typed message (Voxline).
    pub fn send_text(self, text: impl Into<String>) -> Self {
        self.step(Step::SendText { text: text.into() })
    }

    /// Switches channels (Voxline): `[voice_input, text_input, voice_output,
    /// text_output]`, `None` for a channel left as it is.
    pub fn mode_change(self, modes: [Option<bool>; 4]) -> Self {
        let [voice_input, text_input, voice_output, text_output] = modes;
        self.step(Step::ModeChange {
            voice_input,
            text_input,
            voice_output,
            text_output,
        })
    }

    /// Expects a transcript (Voxline) from `role` (`user` or `bot`, any when `None`)
    /// containing `contains` (ignoring case, any when `None`) within `within`.
    pub fn wait_for_text(
        self,
        role: Option<&str>,
        contains: Option<&str>,
        within: Duration,
    ) -> Self {
        self.step(Step::WaitForText {
            role: role.map(str::to_owned),
            contains: contains.map(str::to_owned),
            within,
        })
    }

    /// Parses a scenario from TOML; relative WAV paths are taken from `base_dir` (or
    /// the working directory).
    ///
    /// # Errors
    /// [`CallsimError::Scenario`] when the text is not a valid scenario.
    pub fn from_toml_str(text: &str, base_dir: Option<&Path>) -> Result<Self, CallsimError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| CallsimError::Scenario {
            path: None,
            reason: e.to_string(),
        })?;
        file.into_scenario(base_dir)
            .map_err(|reason| CallsimError::Scenario { path: None, reason })
    }

    /// Reads a scenario file; relative WAV paths are taken from the file's folder.
    ///
    /// # Errors
    /// [`CallsimError::Scenario`] when the file cannot be read or is not a valid
    /// scenario.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, CallsimError> {
        let path = path.as_ref();
        let with_path = |reason: String| CallsimError::Scenario {
            path: Some(path.to_owned()),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| with_path(e.to_string()))?;
        let file: ScenarioFile = toml::from_str(&text).map_err(|e| with_path(e.to_string()))?;
        file.into_scenario(path.parent()).map_err(with_path)
    }
}

impl<'de> Deserialize<'de> for Scenario {
    /// The TOML format of [`Scenario::from_toml_str`]; relative paths are taken from
    /// the working directory.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ScenarioFile::deserialize(deserializer)?
            .into_scenario(None)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    url: String,
    dialect: Dialect,
    #[serde(default)]
    params: toml::Table,
    sample_rate: Option<u32>,
    encoding: Option<String>,
    tail_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    turn_stop_ms: Option<u64>,
    turn_vad: Option<String>,
    gap_limit_ms: Option<u64>,
    stop_on_failure: Option<bool>,
    #[serde(default)]
    steps: Vec<StepFile>,
}

fn default_true() -> bool {
    true
}

fn default_quiet() -> u64 {
    200
}

fn default_press() -> u64 {
    100
}

#[derive(Debug, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
enum StepFile {
    Play {
        file: PathBuf,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        #[serde(default = "default_true")]
        blocking: bool,
    },
    Silence {
        ms: u64,
    },
    Wait {
        ms: u64,
    },
    WaitForAudio {
        within_ms: u64,
    },
    WaitForMark {
        within_ms: u64,
        name: Option<String>,
    },
    WaitUntilQuiet {
        within_ms: u64,
        #[serde(default = "default_quiet")]
        quiet_ms: u64,
    },
    ExpectClear {
        within_ms: u64,
    },
    ExpectNoAudio {
        ms: u64,
    },
    ExpectHangup {
        within_ms: u64,
    },
    Dtmf {
        digit: String,
        #[serde(default = "default_press")]
        duration_ms: u64,
    },
    Hangup {},
    SendText {
        text: String,
    },
    ModeChange {
        voice_input: Option<bool>,
        text_input: Option<bool>,
        voice_output: Option<bool>,
        text_output: Option<bool>,
    },
    WaitForText {
        within_ms: u64,
        role: Option<String>,
        contains: Option<String>,
    },
}

impl ScenarioFile {
    fn into_scenario(self, base_dir: Option<&Path>) -> Result<Scenario, String> {
        let ms = Duration::from_millis;
        let mut options = CallOptions::new(self.url, self.dialect);
        for (key, value) in self.params {
            let value = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            options.params.push((key, value));
        }
        options.sample_rate = self.sample_rate;
        if let Some(e) = self.encoding {
            options.encoding = Some(e.parse().map_err(|e| format!("encoding: {e}"))?);
        }
        if let Some(v) = self.tail_ms {
            options.tail = ms(v);
        }
        if let Some(v) = self.connect_timeout_ms {
            options.connect_timeout = ms(v);
        }
        if let Some(v) = self.turn_stop_ms {
            options.turn_stop = ms(v);
        }
        if let Some(v) = self.gap_limit_ms {
            options.gap_limit = ms(v);
        }
        if let Some(v) = self.turn_vad {
            options.turn_vad = match v.as_str() {
                "webrtc" => TurnVad::WebRtc,
                "energy" => TurnVad::Energy,
                other => return Err(format!("turn_vad {other:?}: expected webrtc or energy")),
            };
        }
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.into_iter().enumerate() {
            steps.push(match step {
                StepFile::Play {
                    file,
                    from_ms,
                    to_ms,
                    blocking,
                } => Step::Play {
                    source: AudioSource::File {
                        path: match base_dir {
                            Some(dir) if file.is_relative() => dir.join(file),
                            _ => file,
                        },
                        from: from_ms.map(ms),
                        to: to_ms.map(ms),
                    },
                    blocking,
                },
                StepFile::Silence { ms: v } => Step::Silence { duration: ms(v) },
                StepFile::Wait { ms: v } => Step::Wait { duration: ms(v) },
                StepFile::WaitForAudio { within_ms } => Step::WaitForAudio {
                    within: ms(within_ms),
                },
                StepFile::WaitForMark { within_ms, name } => Step::WaitForMark {
                    within: ms(within_ms),
                    name,
                },
                StepFile::WaitUntilQuiet {
                    within_ms,
                    quiet_ms,
                } => Step::WaitUntilQuiet {
                    within: ms(within_ms),
                    quiet: ms(quiet_ms),
                },
                StepFile::ExpectClear { within_ms } => Step::ExpectClear {
                    within: ms(within_ms),
                },
                StepFile::ExpectNoAudio { ms: v } => Step::ExpectNoAudio { duration: ms(v) },
                StepFile::ExpectHangup { within_ms } => Step::ExpectHangup {
                    within: ms(within_ms),
                },
                StepFile::Dtmf { digit, duration_ms } => {
                    let mut chars = digit.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) if is_dtmf_digit(c) => Step::Dtmf {
                            digit: c,
                            duration: ms(duration_ms),
                        },
                        _ => {
                            return Err(format!(
                                "step {}: dtmf digit {digit:?} is not one of 0-9 * # A-D",
                                i + 1
                            ));
                        }
                    }
                }
                StepFile::Hangup {} => Step::Hangup,
                StepFile::SendText { text } => Step::SendText { text },
                StepFile::ModeChange {
                    voice_input,
                    text_input,
                    voice_output,
                    text_output,
                } => Step::ModeChange {
                    voice_input,
                    text_input,
                    voice_output,
                    text_output,
                },
                StepFile::WaitForText {
                    within_ms,
                    role,
                    contains,
                } => {
                    if let Some(role) = role.as_deref()
                        && !is_text_role(role)
                    {
                        return Err(format!(
                            "step {}: wait_for_text role {role:?} is not \"user\" or \"bot\"",
                            i + 1
                        ));
                    }
                    Step::WaitForText {
                        within: ms(within_ms),
                        role,
                        contains,
                    }
                }
            });
        }
        Ok(Scenario {
            name: self
                .name
                .unwrap_or_else(|| format!("{} scenario", options.dialect)),
            options,
            steps,
            stop_on_failure: self.stop_on_failure.unwrap_or(true),
        })
    }
}

/// The roles a transcript has on the wire.
pub(crate) fn is_text_role(role: &str) -> bool {
    matches!(role, "user" | "bot")
}

pub(crate) fn is_dtmf_digit(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A' | 'B' | 'C' | 'D')
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It did what it should.
    Passed,
    /// It did not; see the detail.
    Failed,
    /// It never ran (an earlier step failed or the call ended).
    Skipped,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// Position in the script, from 1.
    pub index: usize,
    /// The step's name (`play`, `expect_clear`, ...).
    pub step: &'static str,
    /// What it was to do.
    pub description: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// When it started, in ms on the call's timeline.
    pub started_ms: Option<f64>,
    /// When it ended.
    pub ended_ms: Option<f64>,
    /// What happened (when the awaited thing came, or why it failed).
    pub detail: String,
}

/// The result of a scenario: each step, and the whole call's report.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// Step results, in script order.
    pub steps: Vec<StepReport>,
    /// The call as a whole.
    pub call: CallReport,
}

impl ScenarioReport {
    /// Every step passed.
    pub fn steps_passed(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == StepOutcome::Passed)
    }

    /// Every step passed and the bot made no protocol violation.
    pub fn passed(&self) -> bool {
        self.steps_passed() && self.call.is_clean()
    }

    /// The steps that failed.
    pub fn failures(&self) -> impl Iterator<Item = &StepReport> {
        self.steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Failed)
    }
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        writeln!(f, "scenario {:?}: {verdict}", self.name)?;
        for s in &self.steps {
            let mark = match s.outcome {
                StepOutcome::Passed => "ok  ",
                StepOutcome::Failed => "FAIL",
                StepOutcome::Skipped => "skip",
            };
            let at = match (s.started_ms, s.ended_ms) {
                (Some(a), Some(b)) => format!("{a:>7.0}-{b:<7.0} ms"),
                _ => format!("{:>18}", ""),
            };
            writeln!(f, "  {mark} {:>2}. {at} {}", s.index, s.description)?;
            if !s.detail.is_empty() {
                writeln!(f, "                                {}", s.detail)?;
            }
        }
        write!(f, "{}", self.call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_scenarios_parse() {
        let text = r##"
            name = "barge-in"
            url = "ws://127.0.0.1:9/ws"
            dialect = "twilio"
            tail_ms = 500
            [params]
            tenant = "abc"
            retries = 3

            [[steps]]
            step = "play"
            file = "hello.wav"
            to_ms = 1500

            [[steps]]
            step = "wait_for_audio"
            within_ms = 5000

            [[steps]]
            step = "play"
            file = "/abs/barge.wav"
            blocking = false

            [[steps]]
            step = "expect_clear"
            within_ms = 2000

            [[steps]]
            step = "dtmf"
            digit = "#"

            [[steps]]
            step = "hangup"
        "##;
        let s = Scenario::from_toml_str(text, Some(Path::new("/base"))).expect("parses");
        assert_eq!(s.name, "barge-in");
        assert_eq!(s.options.dialect, Dialect::Twilio);
        assert_eq!(s.options.tail, Duration::from_millis(500));
        assert_eq!(
            s.options.params,
            vec![
                ("retries".to_owned(), "3".to_owned()),
                ("tenant".to_owned(), "abc".to_owned())
            ]
        );
        assert_eq!(s.steps.len(), 6);
        assert_eq!(
            s.steps[0],
            Step::Play {
                source: AudioSource::File {
                    path: PathBuf::from("/base/hello.wav"),
                    from: None,
                    to: Some(Duration::from_millis(1500)),
                },
                blocking: true,
            }
        );
        assert!(
            matches!(&s.steps[2], Step::Play { source: AudioSource::File { path, .. }, blocking: false } if path == Path::new("/abs/barge.wav"))
        );
        assert_eq!(
            s.steps[4],
            Step::Dtmf {
                digit: '#',
                duration: Duration::from_millis(100)
            }
        );
        assert_eq!(s.steps[5], Step::Hangup);
    }

    #[test]
    fn text_steps_parse() {
        let text = r##"
            url = "ws://127.0.0.1:9/ws/flexible"
            dialect = "voxline"
            [params]
            voice_output = false
            tenant = "abc"

            [[steps]]
            step = "send_text"
            text = "What are your hours?"

            [[steps]]
            step = "mode_change"
            voice_output = true
            text_input = false

            [[steps]]
            step = "wait_for_text"
            role = "bot"
            contains = "nine"
            within_ms = 2000

            [[steps]]
            step = "wait_for_text"
            within_ms = 500
        "##;
        let s = Scenario::from_toml_str(text, None).expect("parses");
        assert_eq!(s.options.dialect, Dialect::Voxline);
        assert!(
            s.options
                .params
                .contains(&("voice_output".to_owned(), "false".to_owned()))
        );
        assert_eq!(
            s.steps,
            vec![
                Step::SendText {
                    text: "What are your hours?".into()
                },
                Step::ModeChange {
                    voice_input: None,
                    text_input: Some(false),
                    voice_output: Some(true),
                    text_output: None,
                },
                Step::WaitForText {
                    role: Some("bot".into()),
                    contains: Some("nine".into()),
                    within: Duration::from_millis(2000),
                },
                Step::WaitForText {
                    role: None,
                    contains: None,
                    within: Duration::from_millis(500),
                },
            ]
        );
        assert_eq!(s.steps[1].name(), "mode_change");
        assert_eq!(
            s.steps[1].describe(),
            "change modes: text_input=false, voice_output=true"
        );
        assert_eq!(
            s.steps[2].describe(),
            "wait for a bot transcript containing \"nine\" within 2000 ms"
        );
        let bad = "url = \"ws://h/\"\ndialect = \"voxline\"\n[[steps]]\nstep = \"wait_for_text\"\nrole = \"assistant\"\nwithin_ms = 1";
        assert!(Scenario::from_toml_str(bad, None).is_err());
    }

    #[test]
    fn bad_toml_is_refused_with_a_reason() {
        for text in [
            "url = \"ws://h/\"\ndialect = \"skype\"",
            "url = \"ws://h/\"\ndialect = \"twilio\"\n[[steps]]\nstep = \"fly\"",
            "url = \"ws://h/\"\ndialect = \"twilio\"\n[[steps]]\nstep = \"dtmf\"\ndigit = \"55\"",
            "url = \"ws://h/\"\ndialect = \"twilio\"\nsurprise = 1",
            "url = \"ws://h/\"\ndialect = \"twilio\"\n[[steps]]\nstep = \"wait\"\nms = 1\nwithin_ms = 3",
        ] {
            let err = Scenario::from_toml_str(text, None).expect_err(text);
            assert!(matches!(err, CallsimError::Scenario { .. }), "{err}");
        }
    }
}
