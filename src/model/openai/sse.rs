//! Server-sent events of an OpenAI-compatible chat stream: `data:` lines joined into
//! events, events split on blank lines, `data: [DONE]` at the end, comments and other
//! fields ignored. Bytes are joined by the line reader before any decoding.

use super::reply::{completion_tokens, error_message, finish_reason, logprobs, reasoning_text};
use crate::model::error::ModelError;
use crate::model::request::ChatReply;
use crate::model::stream::{CappedReply, Flow, LineReader};
use serde_json::Value;

/// A chat reply read from SSE bytes as they arrive.
pub(super) struct SseChat {
    lines: LineReader,
    /// `data:` lines of the event being read, joined with `\n`.
    data: Option<String>,
    acc: CappedReply,
    /// A choice carried a `finish_reason`: the answer is whole even without `[DONE]`.
    finished: bool,
}

impl SseChat {
    pub(super) fn new(cap: usize) -> Self {
        SseChat {
            lines: LineReader::default(),
            data: None,
            acc: CappedReply::new(cap),
            finished: false,
        }
    }

    pub(super) fn incomplete(&self) -> ModelError {
        self.acc.incomplete()
    }

    /// Feed one network chunk; `Stop` at `[DONE]` or when the reply cap is reached.
    pub(super) fn push(
        &mut self,
        bytes: &[u8],
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        self.lines.push(bytes)?;
        while let Some(line) = self.lines.next_line_keep_blank() {
            if self.line(&line, on_token)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// One SSE line (without its line ending).
    fn line(
        &mut self,
        line: &[u8],
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        if line.is_empty() {
            return self.dispatch(on_token);
        }
        if line[0] == b':' {
            return Ok(Flow::Continue); // comment (keep-alive)
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field != b"data" {
            return Ok(Flow::Continue); // event:, id:, retry: and unknown fields
        }
        let value = String::from_utf8_lossy(value);
        if value.trim() == "[DONE]" {
            // Whatever the pending event says, the stream ends here.
            self.dispatch(on_token)?;
            return Ok(Flow::Stop);
        }
        match &mut self.data {
            Some(d) => {
                d.push('\n');
                d.push_str(&value);
            }
            None => self.data = Some(value.into_owned()),
        }
        Ok(Flow::Continue)
    }

    /// The event is complete: handle its data.
    fn dispatch(&mut self, on_token: &mut (dyn FnMut(&str) + Send)) -> Result<Flow, ModelError> {
        let Some(data) = self.data.take() else {
            return Ok(Flow::Continue);
        };
        // Some servers put several JSON objects in one event (no blank line between
        // `data:` lines); read them in turn.
        for value in serde_json::Deserializer::from_str(&data).into_iter::<Value>() {
            let v = value.map_err(|e| ModelError::Malformed {
                message: format!(
                    "{e} in event {:?}",
                    crate::reading::sanitize::for_screen(&data, 80)
                ),
            })?;
            if self.chunk(&v, on_token)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// One `chat.completion.chunk` object.
    fn chunk(
        &mut self,
        v: &Value,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        if let Some(message) = error_message(v) {
            return Err(ModelError::Server { message });
        }
        if let Some(n) = completion_tokens(v) {
            self.acc.reply.eval_count = Some(n);
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(Flow::Continue); // a usage-only chunk
        };
        logprobs(&mut self.acc, choice);
        if let Some(delta) = choice.get("delta") {
            if let Some(r) = reasoning_text(delta) {
                self.acc.reply.thinking_chars += r.chars().count();
            }
            if let Some(c) = delta.get("content").and_then(Value::as_str) {
                if self.acc.push_content(c, on_token) == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        if let Some(reason) = finish_reason(choice) {
            self.acc.reply.done_reason = Some(reason);
            self.finished = true;
        }
        Ok(Flow::Continue)
    }

    /// The body ended. Without `[DONE]`, the answer counts only if a choice finished.
    pub(super) fn end_of_stream(
        mut self,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatReply, ModelError> {
        // A last line without its newline: `data: [DONE]` is honoured, a cut line is not.
        if let Some(rest) = self.lines.remainder() {
            let rest = String::from_utf8_lossy(&rest);
            if rest.trim() == "data: [DONE]" || rest.trim() == "data:[DONE]" {
                return match self.dispatch(on_token) {
                    Ok(_) => Ok(self.finish()),
                    Err(ModelError::Malformed { .. }) => Err(self.incomplete()),
                    Err(e) => Err(e),
                };
            }
        }
        // An event whose closing blank line never came.
        match self.dispatch(on_token) {
            Ok(Flow::Stop) => return Ok(self.finish()),
            Ok(Flow::Continue) => {}
            Err(ModelError::Malformed { .. }) => return Err(self.incomplete()),
            Err(e) => return Err(e),
        }
        if self.finished {
            Ok(self.finish())
        } else {
            Err(self.incomplete())
        }
    }

    pub(super) fn finish(self) -> ChatReply {
        self.acc.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chunk(content: &str) -> String {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]
        });
        format!("data: {v}\n\n")
    }

    fn finish_chunk(reason: &str, tokens: u64) -> String {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
        });
        format!("data: {v}\n\n")
    }

    const DONE: &str = "data: [DONE]\n\n";

    /// Feed the stream in the given pieces, then end it.
    fn run(pieces: &[&[u8]], cap: usize) -> (Result<ChatReply, ModelError>, Vec<String>) {
        let mut tokens = Vec::new();
        let mut sse = SseChat::new(cap);
        let mut on = |t: &str| tokens.push(t.to_string());
        for p in pieces {
            match sse.push(p, &mut on) {
                Ok(Flow::Stop) => {
                    let r = sse.finish();
                    return (Ok(r), tokens);
                }
                Ok(Flow::Continue) => {}
                Err(e) => return (Err(e), tokens),
            }
        }
        let r = sse.end_of_stream(&mut on);
        (r, tokens)
    }

    fn run_str(s: &str, cap: usize) -> (Result<ChatReply, ModelError>, Vec<String>) {
        run(&[s.as_bytes()], cap)
    }

    #[test]
    fn tokens_then_done() {
        let s = [
            chunk("A "),
            chunk("cat."),
            finish_chunk("stop", 2),
            DONE.into(),
        ]
        .concat();
        let (r, tokens) = run_str(&s, 1000);
        let r = r.unwrap();
        assert_eq!(r.content, "A cat.");
        assert_eq!(tokens, ["A ", "cat."]);
        assert_eq!(r.done_reason.as_deref(), Some("stop"));
        assert_eq!(r.eval_count, Some(2));
        assert!(!r.truncated);
    }

    #[test]
    fn events_split_anywhere_and_utf8_split_inside_characters() {
        let s = [
            chunk("café "),
            chunk("20°C 🔥"),
            finish_chunk("stop", 2),
            DONE.into(),
        ]
        .concat();
        let bytes = s.as_bytes();
        // One byte per network chunk: every event and every character is split.
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        let (r, tokens) = run(&pieces, 1000);
        assert_eq!(r.unwrap().content, "café 20°C 🔥");
        assert_eq!(tokens, ["café ", "20°C 🔥"]);
        // And in 7-byte pieces (cuts fall inside the multi-byte characters too).
        let pieces: Vec<&[u8]> = bytes.chunks(7).collect();
        assert_eq!(run(&pieces, 1000).0.unwrap().content, "café 20°C 🔥");
    }

    #[test]
    fn crlf_line_endings() {
        let s = [chunk("A"), chunk("B"), DONE.into()]
            .concat()
            .replace('\n', "\r\n");
        assert_eq!(run_str(&s, 1000).0.unwrap().content, "AB");
    }

    #[test]
    fn comments_event_and_id_lines_are_ignored() {
        let s = format!(
            ": keep-alive\n\nevent: message\nid: 1\nretry: 3000\n{}: ping\n{}{DONE}",
            chunk("A"),
            chunk("B")
        );
        let (r, tokens) = run_str(&s, 1000);
        assert_eq!(r.unwrap().content, "AB");
        assert_eq!(tokens, ["A", "B"]);
    }

    #[test]
    fn data_without_space_and_multi_line_data() {
        // `data:` without the space, and one JSON object spread over two data lines.
        let s = "data:{\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n\
                 data: {\"choices\":[{\"delta\":\n\
                 data: {\"content\":\"B\"}}]}\n\n\
                 data:[DONE]\n\n";
        assert_eq!(run_str(s, 1000).0.unwrap().content, "AB");
    }

    #[test]
    fn events_without_blank_lines_between_are_still_read() {
        let s = "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\
                 data: {\"choices\":[{\"delta\":{\"content\":\"B\"}}]}\n\
                 data: [DONE]\n";
        assert_eq!(run_str(s, 1000).0.unwrap().content, "AB");
    }

    #[test]
    fn done_stops_reading() {
        let s = [chunk("A"), DONE.into(), chunk("never")].concat();
        let (r, tokens) = run_str(&s, 1000);
        assert_eq!(r.unwrap().content, "A");
        assert_eq!(tokens, ["A"]);
    }

    #[test]
    fn done_without_trailing_newline_at_end() {
        let s = [chunk("A"), "data: [DONE]".into()].concat();
        assert_eq!(run_str(&s, 1000).0.unwrap().content, "A");
    }

    #[test]
    fn error_object_fails_the_call() {
        let err = json!({"error": {"message": "CUDA out of memory", "type": "server_error", "code": 500}});
        let s = [
            chunk("A c"),
            format!("event: error\ndata: {err}\n\n"),
            DONE.into(),
        ]
        .concat();
        assert_eq!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Server {
                message: "CUDA out of memory".into()
            }
        );
        // A plain string error and vLLM's older top-level error object.
        let s = "data: {\"error\":\"boom\"}\n\n";
        assert_eq!(
            run_str(s, 1000).0.unwrap_err(),
            ModelError::Server {
                message: "boom".into()
            }
        );
        let s = "data: {\"object\":\"error\",\"message\":\"bad\",\"code\":400}\n\n";
        assert_eq!(
            run_str(s, 1000).0.unwrap_err(),
            ModelError::Server {
                message: "bad".into()
            }
        );
    }

    #[test]
    fn missing_done_and_finish_reason_is_incomplete() {
        let s = [chunk("A "), chunk("ca")].concat();
        assert_eq!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Incomplete { received_chars: 4 }
        );
        // Cut in the middle of an event.
        let s = [chunk("A "), "data: {\"choices\":[{\"del".into()].concat();
        assert!(matches!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Incomplete { received_chars: 2 }
        ));
        // Nothing at all.
        assert!(matches!(
            run_str("", 1000).0.unwrap_err(),
            ModelError::Incomplete { received_chars: 0 }
        ));
    }

    #[test]
    fn finish_reason_without_done_is_complete() {
        let s = [chunk("A"), finish_chunk("length", 1)].concat();
        let r = run_str(&s, 1000).0.unwrap();
        assert_eq!(r.content, "A");
        assert_eq!(r.done_reason.as_deref(), Some("length"));
    }

    #[test]
    fn malformed_event_is_an_error() {
        let s = ["data: {\"choices\":[{\"del\n\n".to_string(), DONE.into()].concat();
        assert!(matches!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Malformed { .. }
        ));
    }

    #[test]
    fn reasoning_is_not_content() {
        let s = format!(
            "data: {}\n\n{}{DONE}",
            json!({"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}),
            chunk("A cat.")
        );
        let r = run_str(&s, 1000).0.unwrap();
        assert_eq!(r.content, "A cat.");
        assert_eq!(r.thinking_chars, 3);
    }

    #[test]
    fn huge_reply_is_cut_with_a_note() {
        let one = chunk(&"é".repeat(600));
        let s = one.repeat(10) + DONE;
        let (r, tokens) = run_str(&s, 1001);
        let r = r.unwrap();
        assert!(r.truncated);
        assert!(
            r.content.ends_with("\n[reply cut at 1 KiB]"),
            "{}",
            r.content
        );
        assert_eq!(tokens.concat().len(), 1000); // 1001 falls inside an 'é'
    }
}
