//! A server-sent events decoder (the `text/event-stream` format of the HTML standard),
//! fed with bytes as they arrive, split anywhere.
//!
//! Lines end with LF, CRLF or a lone CR (also when the CR and LF arrive in different
//! chunks). `data:` lines accumulate, joined by LF; a blank line dispatches the event;
//! lines starting with `:` are comments (keepalives) and are skipped; `event:` names
//! the event; `id:`, `retry:` and unknown fields are ignored. A trailing event with no
//! blank line after it is discarded at the end of the stream, as the standard says.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined by LF.
    pub data: String,
}

/// A line or event longer than the decoder accepts: a broken or hostile server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event larger than {limit} bytes")]
pub struct SseTooLarge {
    /// The limit that was exceeded.
    pub limit: usize,
}

/// Incremental decoder; see the [module docs](self).
#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    limit: usize,
    started: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// Events up to 4 MiB (a chat chunk is well under 1 KiB).
    pub const DEFAULT_LIMIT: usize = 4 << 20;

    /// A decoder with the default size limit.
    pub fn new() -> Self {
        Self::with_limit(Self::DEFAULT_LIMIT)
    }

    /// A decoder refusing lines or events longer than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            data: String::new(),
            has_data: false,
            event: None,
            limit,
            started: false,
        }
    }

    /// Decodes `bytes`, appending the events they complete to `out`.
    ///
    /// # Errors
    /// [`SseTooLarge`] when a line or an event exceeds the limit; the decoder should
    /// not be used afterwards.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        let mut rest = bytes;
        if !self.started && !rest.is_empty() {
            // A byte order mark may open the stream; the standard says to drop it.
            if let Some(tail) = rest.strip_prefix(b"\xEF\xBB\xBF".as_slice()) {
                rest = tail;
            }
            self.started = true;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some((b'\n', tail)) = rest.split_first() {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&rest[..end])?;
            let cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if cr {
                match rest.split_first() {
                    Some((b'\n', tail)) => rest = tail,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.end_line(out)?;
        }
        self.extend_line(rest)
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseTooLarge> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(SseTooLarge { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.has_data = false;
            self.data.clear();
            self.event = None;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(SseTooLarge { limit: self.limit });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut out).expect("within limit");
        }
        out
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn line_endings_comments_and_multi_line_data() {
        let events = decode(&[
            b"\xEF\xBB\xBF: keepalive\n\ndata: a\r\ndata:b\r",
            b"\n\r\nevent: error\ndata: {\"x\":1}\r",
            b"\r",
            b"id: 7\nretry: 10\ndata\n\ndata: cut",
        ]);
        assert_eq!(data(&events), ["a\nb", "{\"x\":1}", ""]);
        assert_eq!(events[1].event.as_deref(), Some("error"));
        assert_eq!(events[0].event, None);
    }

    #[test]
    fn oversized_lines_are_refused() {
        let mut decoder = SseDecoder::with_limit(8);
        let mut out = Vec::new();
        assert!(decoder.push(b"data: 12", &mut out).is_ok());
        assert_eq!(
            decoder.push(b"345", &mut out),
            Err(SseTooLarge { limit: 8 })
        );
    }
}
