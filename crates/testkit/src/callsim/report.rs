//! What a call produced: timings, marks, clears, protocol violations and the audio on
//! both sides of the line.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use voxline_audio::{AudioFormat, pcm, wav};

use crate::callsim::dialect::Dialect;
use crate::callsim::error::CallsimError;
use crate::callsim::wire::CallIds;

/// The kind of mistake a bot made on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ViolationKind {
    /// A text frame that is not a JSON object.
    InvalidJson,
    /// A required field is missing or has the wrong type (`event`, `media.payload`,
    /// Plivo's `media.contentType`, ...).
    MissingField,
    /// An event (or Vonage action) the carrier does not accept from a bot.
    UnknownEvent,
    /// No stream id on a frame that needs one.
    MissingStreamId,
    /// A stream id that is not this call's.
    WrongStreamId,
    /// The stream id under another dialect's spelling (`streamSid` to Exotel, ...).
    WrongKey,
    /// A stream id on a frame of a dialect whose frames carry none (Telnyx); reported
    /// as a warning only.
    UnexpectedStreamId,
    /// A payload that is not valid base64.
    BadBase64,
    /// An audio chunk of a size the carrier forbids (Exotel: not a multiple of 20 ms;
    /// Smartflo: not a multiple of 160 bytes; Telnyx: under 20 ms; Vonage: a binary
    /// frame that is not exactly 20 ms; empty payloads).
    BadChunkSize,
    /// Audio in a format the carrier does not take (Plivo `contentType`/`sampleRate`).
    BadMediaFormat,
    /// A binary frame to a JSON dialect, or audio as text to Vonage.
    WrongFrameType,
    /// A mark (or checkpoint) without a name.
    EmptyMarkName,
    /// More bot audio queued than callsim's playout buffer holds (five minutes); the
    /// excess is dropped. Reported once, as a warning.
    BufferOverflow,
}

/// One protocol mistake, with the frame that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// When the frame arrived, in ms on the call's timeline.
    pub at_ms: f64,
    /// What kind of mistake.
    pub kind: ViolationKind,
    /// What exactly is wrong.
    pub message: String,
    /// The start of the offending frame (text, or hex for binary).
    pub excerpt: String,
}

/// What became of a mark (Plivo checkpoint, Vonage notify).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkOutcome {
    /// Echoed when all audio queued before it had played.
    Played,
    /// Echoed early because a clear dropped its audio (Twilio's behaviour).
    EchoedOnClear,
    /// Dropped by a clear without an echo (Plivo, Vonage).
    DroppedOnClear,
    /// The call ended before its audio had played.
    Pending,
}

/// A mark the bot sent and what the carrier did with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarkRecord {
    /// The mark's name (Vonage: the notify payload's `name` field if it has a string
    /// one, else the whole payload as JSON).
    pub name: String,
    /// When the bot sent it (arrival), in ms on the call's timeline.
    pub sent_at_ms: f64,
    /// When the audio queued before it finished playing (or would have).
    pub due_at_ms: f64,
    /// When callsim echoed it, if it did.
    pub echoed_at_ms: Option<f64>,
    /// How it ended.
    pub outcome: MarkOutcome,
}

/// A clear (Plivo `clearAudio`, Vonage `{"action":"clear"}`) the bot sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClearRecord {
    /// When it arrived, in ms on the call's timeline.
    pub at_ms: f64,
    /// How much queued, unplayed bot audio it dropped.
    pub dropped_ms: f64,
    /// Pending marks echoed because of it.
    pub marks_echoed: usize,
    /// Pending marks dropped because of it.
    pub marks_dropped: usize,
}

/// Words the bot sent for the client to show (Voxline `transcript`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextRecord {
    /// When it arrived, in ms on the call's timeline.
    pub at_ms: f64,
    /// Whose words: `user` (a transcript of the caller) or `bot`.
    pub role: String,
    /// The words.
    pub text: String,
    /// Whether the bot marked them final (`false` for an interim transcript).
    pub is_final: bool,
}

/// The channels the bot said were in force (Voxline `modes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModesRecord {
    /// When it arrived, in ms on the call's timeline.
    pub at_ms: f64,
    /// The bot listens to the caller's audio.
    pub voice_input: bool,
    /// The bot reads the caller's text messages.
    pub text_input: bool,
    /// The bot sends audio.
    pub voice_output: bool,
    /// The bot sends transcripts and text.
    pub text_output: bool,
}

/// One caller turn and how long the bot took to answer it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnLatency {
    /// Where the caller's speech started, in ms on the call's timeline.
    pub speech_start_ms: f64,
    /// Where it ended (the end of the last voiced frame).
    pub speech_end_ms: f64,
    /// Where the first bot audio heard after it started (the start of a stretch of bot
    /// audio that began after the speech ended, before the next turn started).
    pub response_ms: Option<f64>,
    /// `response_ms - speech_end_ms`: the caller's wait.
    pub latency_ms: Option<f64>,
}

/// Silence inside a bot playback because its next audio arrived after the previous
/// audio had finished playing (an underrun).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybackGap {
    /// Where the silence started, in ms on the call's timeline.
    pub at_ms: f64,
    /// How long it lasted.
    pub duration_ms: f64,
}

/// Frame counts in both directions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FrameCounts {
    /// Caller media frames sent.
    pub media_sent: u64,
    /// Other frames sent (opening frames, DTMF, mark echoes, acknowledgements, stop).
    pub other_sent: u64,
    /// Caller media frames sent more than one frame after they were due.
    pub media_late: u64,
    /// Frames received from the bot (text and binary).
    pub received: u64,
    /// Of those, frames carrying audio.
    pub media_received: u64,
    /// Of those, marks (Plivo checkpoints, Vonage notifies).
    pub marks_received: u64,
    /// Of those, clears.
    pub clears_received: u64,
    /// Frames that arrived after the call ended (not counted above, not checked).
    pub after_hangup: u64,
}

/// How the call ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum CallEnd {
    /// callsim hung up at the end of its script.
    Callsim {
        /// When, in ms on the call's timeline.
        at_ms: f64,
    },
    /// The server closed the socket first.
    Server {
        /// When, in ms on the call's timeline.
        at_ms: f64,
        /// The close code, if the server sent a close frame.
        code: Option<u16>,
        /// The close reason, if any.
        reason: String,
    },
    /// The connection failed mid-call.
    Error {
        /// When, in ms on the call's timeline.
        at_ms: f64,
        /// What failed.
        error: String,
    },
}

/// Everything `callsim` measured on one call.
///
/// Times (`*_ms`) are milliseconds on the call's timeline, whose origin is the moment
/// the first caller media frame was due (right after the opening frames): caller frame
/// `n` carries the audio of `[n * frame, (n + 1) * frame)` and is sent at its start.
/// [`heard`](Self::heard) and [`sent`](Self::sent) are PCM16 at
/// [`sample_rate`](Self::sample_rate) on the same timeline, so sample `i` is at
/// `i / sample_rate` seconds in both.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// The dialect spoken.
    pub dialect: Dialect,
    /// The URL called (after dialect adjustments such as Twilio dropping the query).
    pub url: String,
    /// The line format, as `mulaw_8000` or `pcm16_16000`.
    pub line_format: String,
    /// The sample rate of [`heard`](Self::heard) and [`sent`](Self::sent).
    pub sample_rate: u32,
    /// Caller audio per media frame, in ms.
    pub frame_ms: u64,
    /// The ids callsim gave the call.
    pub ids: CallIds,
    /// TCP connect plus WebSocket upgrade, in ms.
    pub connect_ms: f64,
    /// Length of the call's timeline (until callsim stopped streaming), in ms.
    pub duration_ms: f64,
    /// When bot audio was first heard.
    pub first_bot_audio_ms: Option<f64>,
    /// Total bot audio heard, in ms.
    pub bot_audio_ms: f64,
    /// Total bot audio dropped by clears before it played, in ms.
    pub cleared_audio_ms: f64,
    /// Caller turns (found by a turn detector on the audio sent) and the bot's response
    /// latency to each.
    pub turns: Vec<TurnLatency>,
    /// Underruns inside bot playbacks.
    pub playback_gaps: Vec<PlaybackGap>,
    /// Marks, in the order the bot sent them.
    pub marks: Vec<MarkRecord>,
    /// Clears, in order.
    pub clears: Vec<ClearRecord>,
    /// Transcripts and bot text (Voxline), in arrival order.
    pub texts: Vec<TextRecord>,
    /// Mode acknowledgements (Voxline), in arrival order.
    pub modes: Vec<ModesRecord>,
    /// Protocol violations by the bot.
    pub violations: Vec<Violation>,
    /// Undocumented but tolerated things the bot did.
    pub warnings: Vec<Violation>,
    /// Frame counts.
    pub frames: FrameCounts,
    /// How the call ended.
    pub end: CallEnd,
    /// What the caller heard: PCM16 at `sample_rate` on the call's timeline, silence
    /// where no bot audio played. Not serialized.
    #[serde(skip)]
    pub heard: Vec<i16>,
    /// What callsim sent: PCM16 at `sample_rate` on the same timeline (mu-law dialects:
    /// after the codec, exactly what the server receives). Not serialized.
    #[serde(skip)]
    pub sent: Vec<i16>,
    /// Every piece of bot audio, decoded to PCM16 at `sample_rate`, concatenated in
    /// arrival order without the gaps of the playout clock (what the bot sent, as
    /// opposed to what was heard). Not serialized.
    #[serde(skip)]
    pub received: Vec<i16>,
}

impl CallReport {
    /// No protocol violations.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violations of one kind.
    pub fn violations_of(&self, kind: ViolationKind) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(move |v| v.kind == kind)
    }

    /// The sample index of a time on the call's timeline.
    pub fn sample_at(&self, ms: f64) -> usize {
        (ms.max(0.0) * f64::from(self.sample_rate) / 1000.0) as usize
    }

    /// Writes [`heard`](Self::heard) as a PCM16 WAV file.
    ///
    /// # Errors
    /// [`CallsimError::Audio`] when the file cannot be written.
    pub fn write_heard_wav(&self, path: impl AsRef<Path>) -> Result<(), CallsimError> {
        write_wav(path.as_ref(), self.sample_rate, &self.heard)
    }

    /// Writes [`sent`](Self::sent) as a PCM16 WAV file.
    ///
    /// # Errors
    /// [`CallsimError::Audio`] when the file cannot be written.
    pub fn write_sent_wav(&self, path: impl AsRef<Path>) -> Result<(), CallsimError> {
        write_wav(path.as_ref(), self.sample_rate, &self.sent)
    }
}

fn write_wav(path: &Path, rate: u32, samples: &[i16]) -> Result<(), CallsimError> {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    pcm::encode_le(samples, &mut bytes);
    wav::write(
        path,
        AudioFormat::new(voxline_audio::Encoding::Pcm16, rate),
        &bytes,
    )?;
    Ok(())
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} ms"))
}

impl fmt::Display for CallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} call to {} ({}, {} ms frames)",
            self.dialect, self.url, self.line_format, self.frame_ms
        )?;
        writeln!(f, "  connect            {:.1} ms", self.connect_ms)?;
        writeln!(f, "  duration           {:.0} ms", self.duration_ms)?;
        writeln!(
            f,
            "  first bot audio    {}",
            opt_ms(self.first_bot_audio_ms)
        )?;
        writeln!(
            f,
            "  bot audio heard    {:.0} ms ({:.0} ms cleared before playing)",
            self.bot_audio_ms, self.cleared_audio_ms
        )?;
        let fr = &self.frames;
        writeln!(
            f,
            "  frames             sent {} media ({} late) + {} other, received {} ({} audio, {} marks, {} clears) + {} after the end",
            fr.media_sent,
            fr.media_late,
            fr.other_sent,
            fr.received,
            fr.media_received,
            fr.marks_received,
            fr.clears_received,
            fr.after_hangup
        )?;
        if self.turns.is_empty() {
            writeln!(f, "  turns              none detected in the caller audio")?;
        }
        for (i, t) in self.turns.iter().enumerate() {
            writeln!(
                f,
                "  turn {:<2}            speech {:.0}-{:.0} ms, response at {}, latency {}",
                i + 1,
                t.speech_start_ms,
                t.speech_end_ms,
                opt_ms(t.response_ms),
                opt_ms(t.latency_ms)
            )?;
        }
        for g in &self.playback_gaps {
            writeln!(
                f,
                "  playback gap       {:.0} ms at {:.0} ms",
                g.duration_ms, g.at_ms
            )?;
        }
        for m in &self.marks {
            writeln!(
                f,
                "  mark {:<14} sent {:.0} ms, due {:.0} ms, echoed {} ({:?})",
                format!("{:?}", m.name),
                m.sent_at_ms,
                m.due_at_ms,
                opt_ms(m.echoed_at_ms),
                m.outcome
            )?;
        }
        for c in &self.clears {
            writeln!(
                f,
                "  clear              at {:.0} ms, dropped {:.0} ms, {} marks echoed, {} dropped",
                c.at_ms, c.dropped_ms, c.marks_echoed, c.marks_dropped
            )?;
        }
        for t in &self.texts {
            writeln!(
                f,
                "  text               at {:.0} ms, {} ({}): {:?}",
                t.at_ms,
                t.role,
                if t.is_final { "final" } else { "interim" },
                t.text
            )?;
        }
        for m in &self.modes {
            writeln!(
                f,
                "  modes              at {:.0} ms: voice_input {}, text_input {}, voice_output {}, text_output {}",
                m.at_ms, m.voice_input, m.text_input, m.voice_output, m.text_output
            )?;
        }
        for w in &self.warnings {
            writeln!(
                f,
                "  warning            {:.0} ms {:?}: {}",
                w.at_ms, w.kind, w.message
            )?;
        }
        if self.violations.is_empty() {
            writeln!(f, "  violations         none")?;
        }
        for v in &self.violations {
            writeln!(
                f,
                "  VIOLATION          {:.0} ms {:?}: {}\n                     frame: {}",
                v.at_ms, v.kind, v.message, v.excerpt
            )?;
        }
        match &self.end {
            CallEnd::Callsim { at_ms } => {
                writeln!(f, "  ended              by callsim at {at_ms:.0} ms")
            }
            CallEnd::Server {
                at_ms,
                code,
                reason,
            } => writeln!(
                f,
                "  ended              by the server at {at_ms:.0} ms (close code {}, {reason:?})",
                code.map_or_else(|| "none".to_owned(), |c| c.to_string())
            ),
            CallEnd::Error { at_ms, error } => {
                writeln!(
                    f,
                    "  ended              by an error at {at_ms:.0} ms: {error}"
                )
            }
        }
    }
}
