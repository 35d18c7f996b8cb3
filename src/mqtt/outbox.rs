//! The bounded buffer of messages waiting for the broker: oldest dropped first (counted);
//! a retained message replaces the older one for its topic (only the newest matters).

use std::collections::VecDeque;

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Msg {
    pub fn new(topic: String, payload: impl Into<Vec<u8>>, retain: bool) -> Self {
        Msg {
            topic,
            payload: payload.into(),
            retain,
        }
    }
}

/// Most bytes buffered, whatever the message count (snapshots are tens of KB each).
pub const MAX_BUFFER_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct Outbox {
    q: VecDeque<Msg>,
    max_msgs: usize,
    max_bytes: usize,
    bytes: usize,
    dropped: u64,
}

impl Outbox {
    pub fn new(max_msgs: usize, max_bytes: usize) -> Self {
        Outbox {
            q: VecDeque::new(),
            max_msgs: max_msgs.max(1),
            max_bytes,
            bytes: 0,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Messages dropped so far (oldest first, to make room).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Queue at the back; returns how many messages were dropped to make room.
    pub fn push(&mut self, m: Msg) -> u64 {
        if m.retain {
            if let Some(i) = self.q.iter().position(|o| o.retain && o.topic == m.topic) {
                let old = self.q.remove(i).expect("index from position");
                self.bytes -= old.payload.len();
            }
        }
        self.bytes += m.payload.len();
        self.q.push_back(m);
        self.trim()
    }

    /// Put back messages the client had taken but not delivered (they are older than
    /// everything queued, so they go first, and are the first dropped when full).
    pub fn push_front_all(&mut self, ms: Vec<Msg>) -> u64 {
        for m in ms.into_iter().rev() {
            if m.retain && self.q.iter().any(|o| o.retain && o.topic == m.topic) {
                continue; // a newer retained message for that topic is queued
            }
            self.bytes += m.payload.len();
            self.q.push_front(m);
        }
        self.trim()
    }

    fn trim(&mut self) -> u64 {
        let mut n = 0;
        while self.q.len() > self.max_msgs || (self.bytes > self.max_bytes && self.q.len() > 1) {
            if let Some(old) = self.q.pop_front() {
                self.bytes -= old.payload.len();
                n += 1;
            }
        }
        self.dropped += n;
        n
    }

    pub fn front(&self) -> Option<&Msg> {
        self.q.front()
    }

    pub fn pop(&mut self) -> Option<Msg> {
        let m = self.q.pop_front()?;
        self.bytes -= m.payload.len();
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str, p: &str, retain: bool) -> Msg {
        Msg::new(t.into(), p.as_bytes().to_vec(), retain)
    }

    #[test]
    fn oldest_dropped_first_and_counted() {
        let mut o = Outbox::new(3, 1 << 20);
        for i in 0..5 {
            o.push(m("e", &i.to_string(), false));
        }
        assert_eq!(o.len(), 3);
        assert_eq!(o.dropped(), 2);
        assert_eq!(o.pop().unwrap().payload, b"2");
    }

    #[test]
    fn retained_replaces_its_topic() {
        let mut o = Outbox::new(10, 1 << 20);
        o.push(m("state", "1", true));
        o.push(m("e", "a", false));
        o.push(m("state", "2", true));
        assert_eq!(o.len(), 2);
        assert_eq!(o.dropped(), 0);
        assert_eq!(o.pop().unwrap().payload, b"a");
        // Given back from the client, older than the queued state: not kept.
        o.push_front_all(vec![m("state", "0", true), m("e", "z", false)]);
        assert_eq!(o.len(), 2);
        assert_eq!(o.pop().unwrap().payload, b"z");
        assert_eq!(o.pop().unwrap().payload, b"2");
    }

    #[test]
    fn byte_cap() {
        let mut o = Outbox::new(100, 10);
        o.push(m("s", "123456", false));
        o.push(m("s", "123456", false));
        assert_eq!(o.len(), 1);
        assert_eq!(o.dropped(), 1);
    }
}
