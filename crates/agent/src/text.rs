//! Cutting a streamed reply into speakable pieces.
//!
//! A language model streams its reply a few characters at a time; text-to-speech
//! sounds natural only when it gets whole phrases. The splitter buffers the stream and
//! hands out a piece as soon as one is complete: the first at a clause boundary (a
//! comma, colon, semicolon or dash after enough words), to cut the time to the bot's
//! first audio, and the rest at sentence ends. A boundary is only taken once the
//! character after it is known, so "3.5", "Dr. Smith" and "e.g. this" stay whole.

/// How eagerly to cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitConfig {
    /// The first piece may end at a clause boundary once it has this many characters
    /// (0 turns clause cutting off).
    pub first_clause_min_chars: usize,
    /// A piece that grows this long without a boundary is cut at its last space, so a
    /// model that never punctuates still gets spoken.
    pub max_chars: usize,
}

impl Default for SplitConfig {
    /// First clause after 20 characters; pieces of at most 300.
    fn default() -> Self {
        Self {
            first_clause_min_chars: 20,
            max_chars: 300,
        }
    }
}

/// Buffers streamed text and returns complete pieces.
#[derive(Debug, Clone)]
pub struct SentenceSplitter {
    config: SplitConfig,
    buf: String,
    /// Whether a piece has been handed out (clause cutting is for the first only).
    started: bool,
}

/// Abbreviations whose full stop does not end a sentence (compared lower-case).
const ABBREVIATIONS: [&str; 14] = [
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "no", "approx", "etc",
];

impl SentenceSplitter {
    /// A splitter with `config`.
    pub fn new(config: SplitConfig) -> Self {
        Self {
            config,
            buf: String::new(),
            started: false,
        }
    }

    /// Adds streamed text; appends the pieces now complete to `out`.
    pub fn push(&mut self, delta: &str, out: &mut Vec<String>) {
        self.buf.push_str(delta);
        while let Some(end) = self.next_boundary() {
            let rest = self.buf.split_off(end);
            let piece = std::mem::replace(&mut self.buf, rest);
            self.emit(piece, out);
        }
    }

    /// The stream ended: returns what is left, if it has any words.
    pub fn finish(&mut self) -> Option<String> {
        let piece = std::mem::take(&mut self.buf);
        let piece = piece.trim();
        self.started = false;
        (!piece.is_empty()).then(|| piece.to_owned())
    }

    /// Drops everything buffered (the reply was cancelled).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.started = false;
    }

    fn emit(&mut self, piece: String, out: &mut Vec<String>) {
        let piece = piece.trim();
        if !piece.is_empty() {
            out.push(piece.to_owned());
            self.started = true;
        }
    }

    /// The byte offset just past the first complete piece in the buffer, if any.
    fn next_boundary(&self) -> Option<usize> {
        let text = self.buf.as_str();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let after = i + c.len_utf8();
            if c == '\n' {
                if !text[..i].trim().is_empty() {
                    return Some(after);
                }
                continue;
            }
            // A boundary needs the next character, to know it is followed by a space.
            let Some(&(_, next)) = chars.peek() else {
                break;
            };
            let spaced = next.is_whitespace();
            let ends_sentence = match c {
                '!' | '?' | '…' => spaced,
                '.' => spaced && !self.is_abbreviation(i),
                // CJK full stops need no space after them.
                '。' | '！' | '？' => true,
                _ => false,
            };
            if ends_sentence {
                // Keep closing quotes and brackets with their sentence.
                return Some(after);
            }
            let ends_clause = matches!(c, ',' | ';' | ':' | '—' | '–') && spaced;
            if ends_clause
                && !self.started
                && self.config.first_clause_min_chars > 0
                && text[..i].trim().chars().count() >= self.config.first_clause_min_chars
            {
                return Some(after);
            }
        }
        self.overflow_cut()
    }

    /// Whether the full stop at byte `dot` ends an abbreviation or an initial.
    fn is_abbreviation(&self, dot: usize) -> bool {
        let before = &self.buf[..dot];
        let word = before
            .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
            .next()
            .unwrap_or("");
        if word.chars().count() == 1 && word.chars().all(char::is_uppercase) {
            return true; // "J. Smith"
        }
        let lower = word.to_lowercase();
        ABBREVIATIONS.contains(&lower.as_str())
    }

    /// A cut at the last space when the buffer is longer than `max_chars`.
    fn overflow_cut(&self) -> Option<usize> {
        if self.buf.chars().count() <= self.config.max_chars.max(1) {
            return None;
        }
        let limit = self
            .buf
            .char_indices()
            .nth(self.config.max_chars.max(1))
            .map_or(self.buf.len(), |(i, _)| i);
        self.buf[..limit]
            .rfind(char::is_whitespace)
            .filter(|&i| !self.buf[..i].trim().is_empty())
            .or(Some(limit))
    }
}

impl Default for SentenceSplitter {
    fn default() -> Self {
        Self::new(SplitConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_stream(deltas: &[&str]) -> Vec<String> {
        let mut splitter = SentenceSplitter::default();
        let mut out = Vec::new();
        for d in deltas {
            splitter.push(d, &mut out);
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn the_first_piece_ends_at_a_clause_and_the_rest_at_sentences() {
        let pieces = split_stream(&[
            "Sure, I can help with that, ",
            "let me check. Your order ",
            "shipped, it arrives Monday! ",
            "Anything else?",
        ]);
        assert_eq!(
            pieces,
            [
                "Sure, I can help with that,",
                "let me check.",
                "Your order shipped, it arrives Monday!",
                "Anything else?"
            ]
        );
    }

    #[test]
    fn a_short_opening_clause_waits_for_more() {
        assert_eq!(split_stream(&["Sure, thing. Ok"]), ["Sure, thing.", "Ok"]);
    }

    #[test]
    fn decimals_abbreviations_and_initials_do_not_end_sentences() {
        let pieces = split_stream(&[
            "Dr. Smith said the fee is 3.5 dollars, e.g. for J. Doe. ",
            "Then we are done.",
        ]);
        assert_eq!(
            pieces,
            [
                "Dr. Smith said the fee is 3.5 dollars,",
                "e.g. for J. Doe.",
                "Then we are done."
            ]
        );
    }

    #[test]
    fn a_boundary_waits_for_the_next_character() {
        let mut splitter = SentenceSplitter::default();
        let mut out = Vec::new();
        splitter.push("It costs 3.", &mut out);
        assert!(out.is_empty(), "3. might be 3.5");
        splitter.push("5 now. Ok", &mut out);
        assert_eq!(out, ["It costs 3.5 now."]);
    }

    #[test]
    fn newlines_and_cjk_stops_end_pieces() {
        assert_eq!(
            split_stream(&["First line\nsecond line"]),
            ["First line", "second line"]
        );
        assert_eq!(split_stream(&["你好。我很好"]), ["你好。", "我很好"]);
    }

    #[test]
    fn unpunctuated_text_is_cut_at_a_space_when_too_long() {
        let mut splitter = SentenceSplitter::new(SplitConfig {
            first_clause_min_chars: 0,
            max_chars: 20,
        });
        let mut out = Vec::new();
        splitter.push("one two three four five six seven", &mut out);
        assert_eq!(
            out,
            ["one two three four", "five six seven"].map(str::to_owned)[..1]
        );
        assert_eq!(splitter.finish().as_deref(), Some("five six seven"));
    }

    #[test]
    fn clear_forgets_the_reply() {
        let mut splitter = SentenceSplitter::default();
        let mut out = Vec::new();
        splitter.push("Half a sent", &mut out);
        splitter.clear();
        splitter.push("New reply.", &mut out);
        assert_eq!(splitter.finish().as_deref(), Some("New reply."));
        assert!(out.is_empty());
    }

    proptest! {
        /// However the stream is cut into deltas, the same pieces come out, and no
        /// word is lost or reordered.
        #[test]
        fn pieces_do_not_depend_on_delta_boundaries(
            text in "[a-zA-Z ,.!?0-9]{0,200}",
            cuts in proptest::collection::vec(0usize..200, 0..20),
        ) {
            let whole = split_stream(&[&text]);
            let mut points: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            points.sort_unstable();
            points.dedup();
            let mut deltas = Vec::new();
            let mut at = 0;
            for p in points {
                deltas.push(&text[at..p]);
                at = p;
            }
            deltas.push(&text[at..]);
            let streamed = split_stream(&deltas);
            prop_assert_eq!(&streamed, &whole);
            let words: Vec<&str> = text.split_whitespace().collect();
            let joined = whole.join(" ");
            let rejoined: Vec<&str> = joined.split_whitespace().collect();
            prop_assert_eq!(rejoined, words);
        }
    }
}
