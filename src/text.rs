//! Text a person reads: characters that a terminal would act on instead of showing (ESC and the
//! other C0 controls, DEL, C1 controls, bidirectional overrides and isolates) are what lets a
//! bullet display as harmless text while approving it applies hidden text. Content keeps line
//! breaks and tabs only ([`hidden_char`] is the store's door); everything printed for a person
//! goes through [`visible`] or a [`Visible`] writer, which shows such characters escaped
//! (`\x1b`, `\u202e`).

use std::borrow::Cow;
use std::io::{self, Write};

/// A character a terminal acts on or that reorders what is shown: C0 controls but line break and
/// tab, DEL, C1 controls, and the bidirectional marks, embeddings, overrides and isolates.
pub fn is_hidden(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{200e}' | '\u{200f}' | '\u{061c}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// The first hidden character of `text` and its place (in characters, from 1), for an error
/// that says where: "U+001B at character 5".
pub fn hidden_char(text: &str) -> Option<String> {
    text.chars()
        .enumerate()
        .find(|(_, c)| is_hidden(*c))
        .map(|(i, c)| format!("U+{:04X} at character {}", u32::from(c), i + 1))
}

/// `text` with every hidden character escaped: C0 controls as `\x1b`, the others (DEL included)
/// as `\u202e` — a form that is also a valid escape inside a JSON string, where C0 controls are
/// escaped already.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_visible(out: &mut String, c: char) {
    use std::fmt::Write as _;
    if !is_hidden(c) {
        out.push(c);
    } else if u32::from(c) < 0x20 {
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    } else {
        let _ = write!(out, "\\u{:04x}", u32::from(c));
    }
}

/// A writer that shows hidden characters escaped (see [`visible`]); bytes that are not UTF-8 are
/// shown as `\xNN`. A character split across two writes is held until it is whole.
pub struct Visible<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Visible<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: Write> Write for Visible<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    for c in s.chars() {
                        push_visible(&mut out, c);
                    }
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    for c in std::str::from_utf8(good).unwrap_or_default().chars() {
                        push_visible(&mut out, c);
                    }
                    match e.error_len() {
                        // an invalid byte: shown, and on past it
                        Some(n) => {
                            for b in &bad[..n] {
                                out.push_str(&format!("\\x{b:02x}"));
                            }
                            rest = &bad[n..];
                        }
                        // a character cut short: kept for the next write
                        None => {
                            rest = bad;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.to_vec();
        self.inner.write_all(out.as_bytes())?;
        self.pending = keep;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let bytes = std::mem::take(&mut self.pending);
            for b in bytes {
                write!(self.inner, "\\x{b:02x}")?;
            }
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Visible<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_show_escaped_and_the_rest_stays() {
        assert_eq!(visible("plain\n\ttext ✓"), "plain\n\ttext ✓");
        assert_eq!(visible("a\x1b[31mred\r"), "a\\x1b[31mred\\x0d");
        assert_eq!(visible("x\u{202e}gnp.exe"), "x\\u202egnp.exe");
        assert_eq!(visible("\u{9b}2J\u{7f}"), "\\u009b2J\\u007f");
        assert_eq!(
            hidden_char("ok\u{1b}]8;;x").as_deref(),
            Some("U+001B at character 3")
        );
        assert_eq!(hidden_char("line\nbreak\ttab"), None);
    }

    #[test]
    fn the_writer_escapes_across_split_writes_and_bad_bytes() {
        let mut out = Vec::new();
        {
            let mut w = Visible::new(&mut out);
            let bytes = "é\u{1b}[0m\u{202e}".as_bytes();
            for b in bytes {
                w.write_all(&[*b]).unwrap();
            }
            w.write_all(&[0xff, b'a']).unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "é\\x1b[0m\\u202e\\xffa");
    }
}
