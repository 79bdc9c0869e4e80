//! An incremental parser for `text/event-stream`, as the HTML standard
//! defines it, for reading an answer from a fetch body stream (EventSource
//! cannot POST). Bytes may arrive split anywhere, even inside a UTF-8
//! character or between the `\r` and `\n` of a line break.

/// One dispatched SSE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// The last `id:` seen on the stream so far, as the standard's
    /// `lastEventId` (it carries over to later messages without one).
    pub id: Option<String>,
    /// The `event:` field; `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feeds bytes in, gets whole messages out. Comments (heartbeats) and
/// `retry:` fields are consumed silently.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous byte was `\r`, so a following `\n` belongs to it.
    after_cr: bool,
    /// A UTF-8 byte order mark may still come at the very start.
    started: bool,
    id: Option<String>,
    event: Option<String>,
    /// Data lines so far, each followed by `\n`.
    data: String,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `bytes` and returns the messages they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseMessage> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                b'\n' => self.end_line(&mut out),
                _ => self.line.push(b),
            }
        }
        out
    }

    fn end_line(&mut self, out: &mut Vec<SseMessage>) {
        let raw = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&raw).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{FEFF}') {
                line = rest.to_owned();
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseMessage>) {
        let event = self.event.take();
        let id = self.id.clone();
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last data line
        out.push(SseMessage {
            id,
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<SseMessage> {
        SseParser::new().push(input)
    }

    fn msg(id: Option<&str>, event: &str, data: &str) -> SseMessage {
        SseMessage {
            id: id.map(str::to_owned),
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    const STREAM: &str = "\u{FEFF}: ping\n\nid: 0\nevent: meta\ndata: {\"a\":1}\n\n\
        id: 1\r\ndata: h\u{e9}llo \u{1F600}\r\n\r\n\
        id: 2\rdata:first\rdata: second\r\r\
        : comment only\nretry: 10\n\n\
        data\n\n\
        event: done\ndata: {}\n\n\
        data: unterminated";

    fn expected() -> Vec<SseMessage> {
        vec![
            msg(Some("0"), "meta", "{\"a\":1}"),
            msg(Some("1"), "message", "h\u{e9}llo \u{1F600}"),
            msg(Some("2"), "message", "first\nsecond"),
            msg(Some("2"), "message", ""),
            msg(Some("2"), "done", "{}"),
        ]
    }

    #[test]
    fn parses_a_whole_stream_with_every_line_ending() {
        assert_eq!(parse_all(STREAM.as_bytes()), expected());
    }

    #[test]
    fn input_split_at_every_byte_position_gives_the_same_messages() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = SseParser::new();
            let mut got = p.push(&bytes[..cut]);
            got.extend(p.push(&bytes[cut..]));
            assert_eq!(got, expected(), "split at byte {cut}");
        }
    }

    #[test]
    fn input_fed_one_byte_at_a_time_gives_the_same_messages() {
        let mut p = SseParser::new();
        let got: Vec<_> = STREAM
            .as_bytes()
            .iter()
            .flat_map(|b| p.push(&[*b]))
            .collect();
        assert_eq!(got, expected());
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_its_name_does_not_leak() {
        let got = parse_all(b"event: meta\n\ndata: x\n\n");
        assert_eq!(got, vec![msg(None, "message", "x")]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let got = parse_all(b"data: a\xffb\n\n");
        assert_eq!(got, vec![msg(None, "message", "a\u{FFFD}b")]);
    }
}
