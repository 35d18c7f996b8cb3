//! Reading one newline-terminated line from a socket with a length cap: a peer that
//! never sends a newline cannot make us buffer without end.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What one read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// Longer than the cap (nothing more is read from it).
    TooLong(usize),
    /// Not UTF-8.
    NotText,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// Read up to and without the next `\n` (a `\r` before it is dropped too).
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > max {
            return Ok(Line::TooLong(buf.len() + take));
        }
        buf.extend_from_slice(&chunk[..take]);
        r.consume(take + usize::from(end));
        if end {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(match String::from_utf8(buf) {
                Ok(s) => Line::Text(s),
                Err(_) => Line::NotText,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn lines_caps_and_ends() {
        let data: &[u8] = b"one\r\ntwo\n\xff\xfe\nlonger than ten\nrest";
        let mut r = BufReader::with_capacity(4, data);
        assert_eq!(
            read_line(&mut r, 10).await.unwrap(),
            Line::Text("one".into())
        );
        assert_eq!(
            read_line(&mut r, 10).await.unwrap(),
            Line::Text("two".into())
        );
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::NotText);
        assert!(matches!(
            read_line(&mut r, 10).await.unwrap(),
            Line::TooLong(n) if n > 10
        ));
        let mut r = BufReader::new(&b"no newline"[..]);
        assert_eq!(read_line(&mut r, 100).await.unwrap(), Line::Eof);
    }
}
