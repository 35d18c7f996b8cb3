//! What a console attaching now needs to show what one attached all along shows: the
//! recent entries (their events, in order), the models' health and load, the newest
//! frame, a running (or the last) upskill run, and the session's totals. Pure.

use super::protocol::{Counters, ServerMsg};
use crate::event::{Event, Role};
use crate::upskill::pipeline::UpskillEvent;
use std::collections::VecDeque;

/// Entries whose frames a snapshot carries (older ones go without their image: a
/// thousand frames would be tens of MB per attach).
pub const FRAMES_IN_SNAPSHOT: usize = 20;
/// Upskill events kept for a run (a run of 8 rows × 100 cases is ~1000).
const MAX_UPSKILL_EVENTS: usize = 20_000;
/// Longest streamed answer kept for the frame in progress (as the console keeps it).
const MAX_STREAM_CHARS: usize = 16_000;

/// The events of one frame (`seq`).
#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    events: Vec<Event>,
    /// The student's answer streaming in, before its `student_answer`.
    streaming: Option<String>,
}

/// The service's memory of the session, for snapshots.
#[derive(Debug, Clone)]
pub struct Recorder {
    history: usize,
    started: Option<Event>,
    skill: Option<Event>,
    paused: Option<Event>,
    refused: Option<Event>,
    /// The last `TeacherAlone`: whether the teacher watches alone now.
    alone: Option<Event>,
    /// The watches as they stand now (without the changes that came with them: a console
    /// attaching shows the states, not old news).
    watches: Option<Event>,
    health: [Option<Event>; 2],
    load: [Option<Event>; 2],
    entries: VecDeque<Entry>,
    upskill: Vec<UpskillEvent>,
    upskill_dropped: u64,
    counters: Counters,
    stopped: Option<Event>,
    broker: Option<ServerMsg>,
}

fn role_index(r: Role) -> usize {
    match r {
        Role::Student => 0,
        Role::Teacher => 1,
    }
}

/// The frame an event belongs to.
pub fn seq_of(ev: &Event) -> Option<u64> {
    match ev {
        Event::FrameTaken { seq, .. }
        | Event::StudentToken { seq, .. }
        | Event::StudentAnswer { seq, .. }
        | Event::StudentFailed { seq, .. }
        | Event::FrameUnanswered { seq, .. }
        | Event::Escalated { seq, .. }
        | Event::TeacherDropped { seq, .. }
        | Event::TeacherStarted { seq, .. }
        | Event::TeacherVerdict { seq, .. }
        | Event::TeacherFailed { seq, .. }
        | Event::Notified { seq, .. } => Some(*seq),
        _ => None,
    }
}

impl Recorder {
    /// Keep the events of the last `history` frames (`console.history`).
    pub fn new(history: usize) -> Self {
        Recorder {
            history: history.max(1),
            started: None,
            skill: None,
            paused: None,
            refused: None,
            watches: None,
            alone: None,
            health: [None, None],
            load: [None, None],
            entries: VecDeque::new(),
            upskill: Vec::new(),
            upskill_dropped: 0,
            counters: Counters::default(),
            stopped: None,
            broker: None,
        }
    }

    /// How the engine stopped: `None` while no `Stopped` came; `Some(None)` for a
    /// requested stop (or `--max-frames` reached); `Some(Some(why))` when it stopped by
    /// itself.
    pub fn stop_failure(&self) -> Option<Option<String>> {
        match &self.stopped {
            Some(Event::Stopped { failure, .. }) => Some(failure.clone()),
            _ => None,
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// An upskill run is under way (started, not yet ended).
    pub fn upskill_running(&self) -> bool {
        matches!(self.upskill.first(), Some(UpskillEvent::Started { .. }))
            && !self.upskill.iter().any(|e| {
                matches!(
                    e,
                    UpskillEvent::Finished(_) | UpskillEvent::Failed(_) | UpskillEvent::Cancelled
                )
            })
    }

    /// Remember an engine event.
    pub fn record(&mut self, ev: &Event) {
        let c = &mut self.counters;
        match ev {
            Event::Started { .. } => self.started = Some(ev.clone()),
            Event::SkillLoaded { .. } => self.skill = Some(ev.clone()),
            Event::Paused { .. } => self.paused = Some(ev.clone()),
            Event::StudentRefused { .. } => self.refused = Some(ev.clone()),
            Event::TeacherAlone { .. } => self.alone = Some(ev.clone()),
            Event::Watches(w) => {
                self.watches = Some(Event::Watches(crate::event::WatchesEvent {
                    watches: w.watches.clone(),
                    changes: Vec::new(),
                    removed: Vec::new(),
                }))
            }
            Event::Health { role, .. } => self.health[role_index(*role)] = Some(ev.clone()),
            Event::ModelLoad { role, .. } => self.load[role_index(*role)] = Some(ev.clone()),
            Event::Stopped { .. } => self.stopped = Some(ev.clone()),
            Event::FrameUnchanged {
                unchanged_total, ..
            } => c.unchanged = *unchanged_total,
            Event::FrameTaken { superseded, .. } => {
                c.frames_seen += 1;
                c.superseded += superseded;
            }
            Event::StudentAnswer { .. } => c.answers += 1,
            Event::Escalated { .. } => c.escalations += 1,
            Event::TeacherDropped { .. } => c.teacher_dropped += 1,
            Event::EscalationRefused { refused, .. } => c.escalations_refused = *refused,
            Event::TeacherVerdict { verdict, .. } if verdict.agrees == Some(false) => {
                c.disagreements += 1
            }
            _ => {}
        }
        let Some(seq) = seq_of(ev) else { return };
        let entry = match self.entries.iter().rposition(|e| e.seq == seq) {
            Some(i) => &mut self.entries[i],
            None => {
                // Only a new, newer frame opens an entry; late events of a forgotten
                // frame are dropped, as the console drops them.
                if self.entries.back().is_some_and(|e| e.seq > seq) {
                    return;
                }
                self.entries.push_back(Entry {
                    seq,
                    events: Vec::new(),
                    streaming: None,
                });
                while self.entries.len() > self.history {
                    self.entries.pop_front();
                }
                self.entries.back_mut().expect("just pushed")
            }
        };
        match ev {
            Event::StudentToken { text, .. } => {
                let s = entry.streaming.get_or_insert_with(String::new);
                let room = MAX_STREAM_CHARS.saturating_sub(s.chars().count());
                s.extend(text.chars().take(room));
            }
            Event::StudentAnswer { .. } | Event::StudentFailed { .. } => {
                entry.streaming = None;
                entry.events.push(ev.clone());
            }
            _ => entry.events.push(ev.clone()),
        }
        // Frames older than the newest few lose their image.
        if self.entries.len() > FRAMES_IN_SNAPSHOT {
            let i = self.entries.len() - FRAMES_IN_SNAPSHOT - 1;
            for e in &mut self.entries[i].events {
                if let Event::FrameTaken { image, .. } = e {
                    *image = None;
                }
            }
        }
    }

    /// Remember the broker's state (`ServerMsg::Broker`).
    pub fn record_broker(&mut self, msg: &ServerMsg) {
        self.broker = Some(msg.clone());
    }

    /// Remember an upskill event (a new run forgets the previous one).
    pub fn record_upskill(&mut self, ev: &UpskillEvent) {
        if matches!(ev, UpskillEvent::Started { .. }) {
            self.upskill.clear();
            self.upskill_dropped = 0;
        }
        if self.upskill.len() < MAX_UPSKILL_EVENTS {
            self.upskill.push(ev.clone());
        } else {
            self.upskill_dropped += 1;
        }
    }

    /// The kept frame of an entry (for `a` and `s` from a console).
    pub fn frame_of(&self, seq: u64) -> Option<std::sync::Arc<crate::frame::PreparedFrame>> {
        self.entries
            .iter()
            .find(|e| e.seq == seq)?
            .events
            .iter()
            .find_map(|ev| match ev {
                Event::FrameTaken { image, .. } => image.clone(),
                _ => None,
            })
    }

    /// The events of an entry, in order (for `s`).
    pub fn events_of(&self, seq: u64) -> Option<&[Event]> {
        self.entries
            .iter()
            .find(|e| e.seq == seq)
            .map(|e| e.events.as_slice())
    }

    /// The messages a console replays to be where one attached all along is.
    pub fn snapshot(&self, resync: bool) -> Vec<ServerMsg> {
        let mut out = vec![ServerMsg::SnapshotBegin { resync }];
        let singles = [
            &self.started,
            &self.skill,
            &self.paused,
            &self.refused,
            &self.alone,
            &self.watches,
        ];
        let roles = self.health.iter().chain(self.load.iter());
        for ev in singles.into_iter().chain(roles).flatten() {
            out.push(ServerMsg::Event(ev.clone()));
        }
        for e in &self.entries {
            for ev in &e.events {
                out.push(ServerMsg::Event(ev.clone()));
            }
            if let Some(text) = &e.streaming {
                out.push(ServerMsg::Event(Event::StudentToken {
                    seq: e.seq,
                    text: text.clone(),
                }));
            }
        }
        for ev in &self.upskill {
            out.push(ServerMsg::Upskill(ev.clone()));
        }
        out.extend(self.broker.clone());
        if let Some(ev) = &self.stopped {
            out.push(ServerMsg::Event(ev.clone()));
        }
        out.push(ServerMsg::SnapshotEnd {
            counters: self.counters,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Health;
    use crate::frame::PreparedFrame;
    use chrono::Utc;
    use std::sync::Arc;

    fn frame(seq: u64, with_image: bool) -> Event {
        Event::FrameTaken {
            dhash: None,
            seq,
            captured_at: Utc::now(),
            label: format!("f{seq}"),
            width: 2,
            height: 2,
            jpeg_bytes: 3,
            superseded: 1,
            image: with_image.then(|| {
                Arc::new(PreparedFrame {
                    width: 2,
                    height: 2,
                    jpeg: vec![1, 2, 3].into(),
                    base64: "AQID".into(),
                })
            }),
        }
    }

    fn answer(seq: u64) -> Event {
        Event::StudentAnswer {
            seq,
            at: Utc::now(),
            answer: format!("answer {seq}"),
            confidence: Some(0.9),
            measured_confidence: None,
            latency_ms: 10,
            reasons: vec![],
            skill: "skill.txt".into(),
        }
    }

    fn events(snap: &[ServerMsg]) -> Vec<&Event> {
        snap.iter()
            .filter_map(|m| match m {
                ServerMsg::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn keeps_the_recent_entries_and_the_totals() {
        let mut r = Recorder::new(3);
        r.record(&Event::Health {
            role: Role::Student,
            health: Health::Ok { latency_ms: 5 },
        });
        for seq in 1..=5 {
            r.record(&frame(seq, true));
            r.record(&answer(seq));
        }
        let snap = r.snapshot(false);
        assert!(matches!(
            snap[0],
            ServerMsg::SnapshotBegin { resync: false }
        ));
        let ServerMsg::SnapshotEnd { counters } = snap.last().unwrap() else {
            panic!()
        };
        assert_eq!(counters.answers, 5);
        assert_eq!(counters.frames_seen, 5);
        assert_eq!(counters.superseded, 5);
        let seqs: Vec<u64> = events(&snap).iter().filter_map(|e| seq_of(e)).collect();
        assert_eq!(seqs, vec![3, 3, 4, 4, 5, 5]);
        assert!(matches!(events(&snap)[0], Event::Health { .. }));
        // A late event of a forgotten frame does not come back.
        r.record(&Event::TeacherFailed {
            seq: 1,
            error: "x".into(),
        });
        assert!(r.events_of(1).is_none());
    }

    #[test]
    fn an_attached_console_learns_the_teacher_watches_alone_and_why_frames_went_unanswered() {
        let mut r = Recorder::new(3);
        r.record(&frame(1, true));
        r.record(&Event::FrameUnanswered {
            seq: 1,
            why: "student offline".into(),
        });
        r.record(&Event::TeacherAlone {
            on: true,
            every_secs: 20,
        });
        let snap = r.snapshot(false);
        let evs = events(&snap);
        assert!(evs
            .iter()
            .any(|e| matches!(e, Event::TeacherAlone { on: true, .. })));
        assert!(evs
            .iter()
            .any(|e| matches!(e, Event::FrameUnanswered { seq: 1, .. })));
    }

    #[test]
    fn a_streaming_answer_is_one_token_event_until_it_ends() {
        let mut r = Recorder::new(10);
        r.record(&frame(1, false));
        for t in ["A per", "son ", "stands."] {
            r.record(&Event::StudentToken {
                seq: 1,
                text: t.into(),
            });
        }
        let snap = r.snapshot(true);
        let evs = events(&snap);
        assert!(
            matches!(evs.last(), Some(Event::StudentToken { text, .. }) if text == "A person stands.")
        );
        r.record(&answer(1));
        let snap = r.snapshot(true);
        assert!(!events(&snap)
            .iter()
            .any(|e| matches!(e, Event::StudentToken { .. })));
    }

    #[test]
    fn only_the_newest_frames_keep_their_image() {
        let mut r = Recorder::new(100);
        for seq in 1..=(FRAMES_IN_SNAPSHOT as u64 + 5) {
            r.record(&frame(seq, true));
        }
        assert!(r.frame_of(1).is_none());
        assert!(r.frame_of(5).is_none());
        assert!(r.frame_of(6).is_some());
        assert!(r.frame_of(FRAMES_IN_SNAPSHOT as u64 + 5).is_some());
    }

    #[test]
    fn an_upskill_run_is_replayed_and_a_new_one_replaces_it() {
        let mut r = Recorder::new(10);
        r.record_upskill(&UpskillEvent::Started {
            cases: vec![],
            total_calls: 4,
        });
        r.record_upskill(&UpskillEvent::Phase("scoring".into()));
        assert!(r.upskill_running());
        r.record_upskill(&UpskillEvent::Cancelled);
        assert!(!r.upskill_running());
        r.record_upskill(&UpskillEvent::Started {
            cases: vec![],
            total_calls: 2,
        });
        let ups: Vec<_> = r
            .snapshot(false)
            .into_iter()
            .filter(|m| matches!(m, ServerMsg::Upskill(_)))
            .collect();
        assert_eq!(ups.len(), 1);
    }

    #[test]
    fn an_early_verdict_mid_stream_is_kept_in_order_with_the_answer() {
        use crate::policy::Reason;
        let mut r = Recorder::new(10);
        r.record(&frame(1, false));
        r.record(&Event::StudentToken {
            seq: 1,
            text: "Smoke rises ".into(),
        });
        r.record(&Event::Escalated {
            seq: 1,
            reasons: vec![Reason::SafetyEarly {
                keyword: "smoke".into(),
                needed: None,
            }],
            queue_len: 1,
            frame_path: None,
        });
        r.record(&Event::TeacherStarted {
            seq: 1,
            queue_len: 0,
        });
        r.record(&Event::TeacherVerdict {
            seq: 1,
            verdict: crate::roles::verdict::Verdict::default(),
            latency_ms: 5,
        });
        r.record(&Event::StudentToken {
            seq: 1,
            text: "from a pan.".into(),
        });
        let kinds = |snap: &[ServerMsg]| -> Vec<&'static str> {
            events(snap)
                .iter()
                .filter_map(|e| match e {
                    Event::FrameTaken { .. } => Some("frame"),
                    Event::Escalated { .. } => Some("escalated"),
                    Event::TeacherStarted { .. } => Some("started"),
                    Event::TeacherVerdict { .. } => Some("verdict"),
                    Event::StudentToken { .. } => Some("tokens"),
                    Event::StudentAnswer { .. } => Some("answer"),
                    _ => None,
                })
                .collect()
        };
        // Attached mid-answer: the verdict, then the answer so far (all of it).
        let snap = r.snapshot(true);
        assert_eq!(
            kinds(&snap),
            ["frame", "escalated", "started", "verdict", "tokens"]
        );
        assert!(events(&snap).iter().any(
            |e| matches!(e, Event::StudentToken { text, .. } if text == "Smoke rises from a pan.")
        ));
        // The answer completes: the entry keeps the verdict, then the full answer.
        r.record(&answer(1));
        assert_eq!(
            kinds(&r.snapshot(true)),
            ["frame", "escalated", "started", "verdict", "answer"]
        );
    }
}
