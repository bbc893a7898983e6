//! Text chunking for the WebSocket, as the SDK does it: text is sent up to the last
//! word boundary seen so far, each chunk ending with a single space (the service's
//! rule); the partial word waits for more text or a flush.

/// A request's text waiting to be sent.
#[derive(Debug, Default)]
pub(crate) struct Chunker {
    pending: String,
}

impl Chunker {
    /// Adds text; gives the chunk ready to send, if a word boundary was reached.
    pub(crate) fn push(&mut self, text: &str) -> Option<String> {
        self.pending.push_str(text);
        let boundary = self
            .pending
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, c)| i + c.len_utf8())?;
        let rest = self.pending.split_off(boundary);
        let ready = std::mem::replace(&mut self.pending, rest);
        finish_chunk(&ready)
    }

    /// Everything still waiting, as a chunk (for a flush or the end of input).
    pub(crate) fn drain(&mut self) -> Option<String> {
        let ready = std::mem::take(&mut self.pending);
        finish_chunk(&ready)
    }
}

/// `text` with its surrounding whitespace trimmed and one trailing space, or `None`
/// if it is blank.
fn finish_chunk(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut chunk = String::with_capacity(trimmed.len() + 1);
    chunk.push_str(trimmed);
    chunk.push(' ');
    Some(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_up_to_the_last_word_boundary_with_one_trailing_space() {
        let mut c = Chunker::default();
        assert_eq!(c.push("Hel"), None);
        assert_eq!(c.push("lo wor").as_deref(), Some("Hello "));
        assert_eq!(c.push("ld, how are"), Some("world, how ".to_owned()));
        assert_eq!(c.push("  "), Some("are ".to_owned()));
        assert_eq!(c.push("you?"), None);
        assert_eq!(c.drain().as_deref(), Some("you? "));
        assert_eq!(c.drain(), None);
    }

    #[test]
    fn blank_text_sends_nothing() {
        let mut c = Chunker::default();
        assert_eq!(c.push(" \n "), None);
        assert_eq!(c.drain(), None);
    }

    #[test]
    fn multibyte_text_splits_on_char_boundaries() {
        let mut c = Chunker::default();
        assert_eq!(c.push("héllo wörld").as_deref(), Some("héllo "));
        assert_eq!(c.drain().as_deref(), Some("wörld "));
    }
}
