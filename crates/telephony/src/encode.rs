//! Encoding bot commands into each dialect's frames. Media JSON is written straight
//! into one pre-sized `String`; no intermediate value tree.

use std::fmt::Write as _;

use bytes::Bytes;
use voxline_audio::{AudioFormat, Encoding, FrameSize};

use crate::error::EncodeError;
use crate::event::{BotCommand, Dialect, Modes, TextRole, WsFrame};
use crate::wire::{base64_len, push_base64, push_json_str};

/// Exotel times out on messages over 100 KB: larger plays are split.
pub(crate) const EXOTEL_MAX_MESSAGE: usize = 100_000;

/// Everything an encoder needs from the session.
pub(crate) struct Outbound<'a> {
    pub(crate) dialect: Dialect,
    pub(crate) stream_id: Option<&'a str>,
    pub(crate) format: AudioFormat,
    pub(crate) frame: FrameSize,
    /// Smartflo's outbound media counter: the number of media messages sent so far.
    pub(crate) chunks_sent: &'a mut u64,
    /// A reusable buffer (byte-swapped Telnyx L16).
    pub(crate) scratch: &'a mut Vec<u8>,
}

impl Outbound<'_> {
    fn unsupported(&self, command: &'static str) -> EncodeError {
        EncodeError::Unsupported {
            dialect: self.dialect,
            command,
        }
    }

    /// The stream id, for dialects whose message needs one.
    fn stream_id(&self, command: &'static str) -> Result<&str, EncodeError> {
        self.stream_id.ok_or(EncodeError::NoStreamId {
            dialect: self.dialect,
            command,
        })
    }

    pub(crate) fn encode(
        &mut self,
        command: &BotCommand,
        out: &mut Vec<WsFrame>,
    ) -> Result<(), EncodeError> {
        match command {
            BotCommand::Play(audio) => self.play(audio, out),
            BotCommand::Mark(name) => self.mark(name, out),
            BotCommand::Clear => self.clear(out),
            BotCommand::Hangup => match self.dialect {
                // Closing the socket is how an Exotel stream ends.
                Dialect::Exotel => {
                    out.push(close_hangup());
                    Ok(())
                }
                // Voxline says why before closing.
                Dialect::Voxline => {
                    out.push(WsFrame::Text(object(&[("event", "hangup")], None)));
                    out.push(close_hangup());
                    Ok(())
                }
                _ => Err(self.unsupported("hangup")),
            },
            BotCommand::Transfer { .. } => Err(self.unsupported("transfer")),
            BotCommand::Text {
                role,
                text,
                is_final,
            } => match self.dialect {
                Dialect::Voxline => {
                    out.push(WsFrame::Text(transcript_json(*role, text, *is_final)));
                    Ok(())
                }
                _ => Err(self.unsupported("text")),
            },
            BotCommand::Modes(modes) => match self.dialect {
                Dialect::Voxline => {
                    out.push(WsFrame::Text(modes_json(*modes)));
                    Ok(())
                }
                _ => Err(self.unsupported("modes")),
            },
        }
    }

    fn play(&mut self, audio: &Bytes, out: &mut Vec<WsFrame>) -> Result<(), EncodeError> {
        let unit = self.frame.unit();
        if audio.is_empty() || !audio.len().is_multiple_of(unit) {
            return Err(EncodeError::ChunkSize {
                dialect: self.dialect,
                len: audio.len(),
                unit,
            });
        }
        match self.dialect {
            Dialect::Exotel => {
                let id = self.stream_id("play")?;
                let max = (EXOTEL_MAX_MESSAGE / unit).max(1) * unit;
                for piece in audio.chunks(max) {
                    out.push(WsFrame::Text(media_json(
                        "stream_sid",
                        Some(id),
                        piece,
                        None,
                    )));
                }
            }
            Dialect::Smartflo => {
                let id = self.stream_id("play")?;
                let chunk = *self.chunks_sent + 1;
                out.push(WsFrame::Text(media_json(
                    "streamSid",
                    Some(id),
                    audio,
                    Some(chunk),
                )));
                *self.chunks_sent = chunk;
            }
            Dialect::Twilio => {
                let id = self.stream_id("play")?;
                out.push(WsFrame::Text(media_json(
                    "streamSid",
                    Some(id),
                    audio,
                    None,
                )));
            }
            Dialect::Plivo => out.push(WsFrame::Text(plivo_play_json(self.format, audio))),
            Dialect::Telnyx => {
                let text = if self.format.encoding == Encoding::Pcm16 {
                    // RTP L16 is big-endian.
                    self.scratch.clear();
                    self.scratch.extend_from_slice(audio);
                    for pair in self.scratch.chunks_exact_mut(2) {
                        pair.swap(0, 1);
                    }
                    media_json("", None, self.scratch, None)
                } else {
                    media_json("", None, audio, None)
                };
                out.push(WsFrame::Text(text));
            }
            Dialect::Voxline => out.push(WsFrame::Text(voxline_media_json(audio))),
            Dialect::Vonage => {
                // Exactly one 20 ms frame per message; slices share the buffer.
                let frame = self.frame.frame().max(1);
                let mut at = 0;
                while at < audio.len() {
                    let end = (at + frame).min(audio.len());
                    out.push(WsFrame::Binary(audio.slice(at..end)));
                    at = end;
                }
            }
        }
        Ok(())
    }

    fn mark(&mut self, name: &str, out: &mut Vec<WsFrame>) -> Result<(), EncodeError> {
        if name.is_empty() {
            return Err(EncodeError::EmptyMarkName {
                dialect: self.dialect,
            });
        }
        let text = match self.dialect {
            Dialect::Exotel => {
                let id = self.stream_id("mark")?;
                object(
                    &[("event", "mark"), ("stream_sid", id)],
                    Some(("mark", name)),
                )
            }
            Dialect::Smartflo | Dialect::Twilio => {
                let id = self.stream_id("mark")?;
                object(
                    &[("event", "mark"), ("streamSid", id)],
                    Some(("mark", name)),
                )
            }
            Dialect::Plivo => {
                let id = self.stream_id("mark")?;
                object(
                    &[("event", "checkpoint"), ("streamId", id), ("name", name)],
                    None,
                )
            }
            Dialect::Telnyx => object(&[("event", "mark")], Some(("mark", name))),
            Dialect::Voxline => object(&[("event", "mark"), ("name", name)], None),
            // No marks on Vonage's socket: the server emulates them as audio goes out.
            Dialect::Vonage => return Err(self.unsupported("mark")),
        };
        out.push(WsFrame::Text(text));
        Ok(())
    }

    fn clear(&mut self, out: &mut Vec<WsFrame>) -> Result<(), EncodeError> {
        let text = match self.dialect {
            Dialect::Exotel => object(
                &[("event", "clear"), ("stream_sid", self.stream_id("clear")?)],
                None,
            ),
            Dialect::Smartflo | Dialect::Twilio => object(
                &[("event", "clear"), ("streamSid", self.stream_id("clear")?)],
                None,
            ),
            Dialect::Plivo => object(
                &[
                    ("event", "clearAudio"),
                    ("streamId", self.stream_id("clear")?),
                ],
                None,
            ),
            Dialect::Telnyx | Dialect::Voxline => object(&[("event", "clear")], None),
            Dialect::Vonage => object(&[("action", "clear")], None),
        };
        out.push(WsFrame::Text(text));
        Ok(())
    }
}

/// `{"event":"media",<id_key>:<id>,"media":{"payload":<b64>[,"chunk":N]}}`; no id
/// when `id` is `None`.
fn media_json(id_key: &str, id: Option<&str>, audio: &[u8], chunk: Option<u64>) -> String {
    let id_len = id.map_or(0, |id| id_key.len() + id.len() + 8);
    let mut s = String::with_capacity(64 + id_len + base64_len(audio.len()));
    s.push_str("{\"event\":\"media\",");
    if let Some(id) = id {
        s.push('"');
        s.push_str(id_key);
        s.push_str("\":\"");
        push_json_str(&mut s, id);
        s.push_str("\",");
    }
    s.push_str("\"media\":{\"payload\":\"");
    push_base64(&mut s, audio);
    s.push('"');
    if let Some(chunk) = chunk {
        // Writing to a String cannot fail.
        let _ = write!(s, ",\"chunk\":{chunk}");
    }
    s.push_str("}}");
    s
}

/// The close frame that ends a call on a hang-up.
fn close_hangup() -> WsFrame {
    WsFrame::Close {
        code: 1000,
        reason: "hangup".to_owned(),
    }
}

/// Voxline's `{"event":"media","audio":<b64>}`.
fn voxline_media_json(audio: &[u8]) -> String {
    let mut s = String::with_capacity(32 + base64_len(audio.len()));
    s.push_str("{\"event\":\"media\",\"audio\":\"");
    push_base64(&mut s, audio);
    s.push_str("\"}");
    s
}

/// Voxline's `transcript`: `role` is `user` for the caller, `bot` for the bot.
fn transcript_json(role: TextRole, text: &str, is_final: bool) -> String {
    let role = match role {
        TextRole::Caller => "user",
        TextRole::Bot => "bot",
    };
    let mut s = String::with_capacity(64 + text.len());
    s.push_str("{\"event\":\"transcript\",\"role\":\"");
    s.push_str(role);
    s.push_str("\",\"text\":\"");
    push_json_str(&mut s, text);
    let _ = write!(s, "\",\"final\":{is_final}}}");
    s
}

/// Voxline's `modes` acknowledgement.
fn modes_json(modes: Modes) -> String {
    let Modes {
        voice_input,
        text_input,
        voice_output,
        text_output,
    } = modes;
    format!(
        "{{\"event\":\"modes\",\"voice_input\":{voice_input},\"text_input\":{text_input},\"voice_output\":{voice_output},\"text_output\":{text_output}}}"
    )
}

/// Plivo's `playAudio`.
fn plivo_play_json(format: AudioFormat, audio: &[u8]) -> String {
    let content_type = match format.encoding {
        Encoding::Pcm16 => "audio/x-l16",
        Encoding::Mulaw => "audio/x-mulaw",
        Encoding::Alaw => "audio/x-alaw",
    };
    let mut s = String::with_capacity(96 + base64_len(audio.len()));
    s.push_str("{\"event\":\"playAudio\",\"media\":{\"contentType\":\"");
    s.push_str(content_type);
    let _ = write!(s, "\",\"sampleRate\":{},\"payload\":\"", format.sample_rate);
    push_base64(&mut s, audio);
    s.push_str("\"}}");
    s
}

/// A flat object of string fields, with an optional `{"<key>":{"name":<name>}}`.
fn object(fields: &[(&str, &str)], named: Option<(&str, &str)>) -> String {
    let mut s = String::with_capacity(64);
    s.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        s.push_str(key);
        s.push_str("\":\"");
        push_json_str(&mut s, value);
        s.push('"');
    }
    if let Some((key, name)) = named {
        s.push_str(",\"");
        s.push_str(key);
        s.push_str("\":{\"name\":\"");
        push_json_str(&mut s, name);
        s.push_str("\"}");
    }
    s.push('}');
    s
}
