//! Incidents (pure): a confirmed frame (a verdict of level ≥ 1) opens one; further
//! confirmed frames within `gap_secs` of its last one join it (raising its level when
//! theirs is higher); it closes `gap_secs` after its last confirmed frame. Its level is
//! the highest of its frames, its title the newest of its most urgent ones. A cut or
//! unreadable verdict never raises a level (see `roles::verdict::level`) nor retitles.
//! The state is the open incidents; the store keeps them, so a restart picks them up.

use crate::event::{IncidentChange, IncidentEvent};
use crate::roles::verdict::{self, Verdict};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone)]
pub struct Tracker {
    gap: Duration,
    next_id: u64,
    open: Vec<IncidentEvent>,
}

impl Tracker {
    /// `next_id`: above every id the store holds; `open`: the incidents it holds open.
    pub fn new(gap_secs: u64, next_id: u64, open: Vec<IncidentEvent>) -> Self {
        Tracker {
            gap: Duration::seconds(gap_secs as i64),
            next_id: next_id.max(1),
            open,
        }
    }

    pub fn open_incidents(&self) -> &[IncidentEvent] {
        &self.open
    }

    /// The highest level among the open incidents (0 when none is open).
    pub fn highest_open_level(&self) -> u8 {
        self.open.iter().map(|i| i.level).max().unwrap_or(0)
    }

    /// When the next open incident closes, if nothing joins it.
    pub fn next_close(&self) -> Option<DateTime<Utc>> {
        self.open.iter().map(|i| i.last_at + self.gap).min()
    }

    /// The teacher judged frame `seq` at `at`. Returns what changed: nothing for a verdict
    /// of level 0; a close first when the open incident's gap has passed unnoticed.
    pub fn on_verdict(&mut self, seq: u64, at: DateTime<Utc>, v: &Verdict) -> Vec<IncidentEvent> {
        self.on_confirmed(seq, at, verdict::level(v), verdict::title(v), !v.truncated)
    }

    /// A confirmed frame `seq` of `level` (0: nothing) titled `title`: it opens, joins or
    /// raises an incident. `retitle`: whether its title may replace the incident's (a cut
    /// verdict's may not). Verdicts and confirmed watches (`on_yes`) both come here.
    pub fn on_confirmed(
        &mut self,
        seq: u64,
        at: DateTime<Utc>,
        level: u8,
        title: String,
        retitle: bool,
    ) -> Vec<IncidentEvent> {
        if level == 0 {
            return Vec::new();
        }
        let mut out = self.tick(at);
        if let Some(inc) = self.open.last_mut() {
            let raised = level > inc.level;
            if raised {
                inc.level = level;
            }
            if (retitle && level >= inc.level) || inc.title.is_empty() {
                inc.title = title;
                inc.key_seq = Some(seq);
            }
            inc.last_at = inc.last_at.max(at);
            inc.frames += 1;
            inc.seq = Some(seq);
            inc.change = if raised {
                IncidentChange::Raise
            } else {
                IncidentChange::Join
            };
            out.push(inc.clone());
            return out;
        }
        let inc = IncidentEvent {
            change: IncidentChange::Open,
            id: self.next_id,
            seq: Some(seq),
            level,
            title,
            opened_at: at,
            last_at: at,
            closed_at: None,
            frames: 1,
            key_seq: Some(seq),
            acked_at: None,
            acked_by: None,
        };
        self.next_id += 1;
        self.open.push(inc.clone());
        out.push(inc);
        out
    }

    /// Close what has had no confirmed frame for `gap_secs` by `now` (closed at its last
    /// frame + the gap, not at `now`: a late tick does not stretch it).
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<IncidentEvent> {
        let gap = self.gap;
        let (closing, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|i| now >= i.last_at + gap);
        self.open = open;
        closing
            .into_iter()
            .map(|mut i| {
                i.change = IncidentChange::Close;
                i.seq = None;
                i.closed_at = Some(i.last_at + gap);
                i
            })
            .collect()
    }

    /// Acknowledge `id` (or every open incident). Unknown or closed ids change nothing.
    pub fn ack(&mut self, id: Option<u64>, by: &str, now: DateTime<Utc>) -> Vec<IncidentEvent> {
        self.open
            .iter_mut()
            .filter(|i| id.is_none_or(|id| i.id == id) && i.acked_at.is_none())
            .map(|i| {
                i.acked_at = Some(now);
                i.acked_by = Some(by.to_string());
                let mut e = i.clone();
                e.change = IncidentChange::Ack;
                e.seq = None;
                e
            })
            .collect()
    }
}

/// How long an incident lasted (open to close, or to its last frame while open).
pub fn duration(i: &IncidentEvent) -> Duration {
    i.closed_at.unwrap_or(i.last_at) - i.opened_at
}

/// What a close says (on every alert channel): how long, how many frames, which title.
pub fn close_summary(i: &IncidentEvent) -> String {
    format!(
        "closed after {} s, {} confirmed frames: {}",
        duration(i).num_seconds(),
        i.frames,
        i.title
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn v(level: u8, title: &str) -> Verdict {
        Verdict {
            agrees: Some(false),
            safety_relevant: Some(level > 0),
            summary: format!("{title} (summary)"),
            level: Some(level),
            title: title.into(),
            ..Verdict::default()
        }
    }

    fn changes(evs: &[IncidentEvent]) -> Vec<IncidentChange> {
        evs.iter().map(|e| e.change).collect()
    }

    #[test]
    fn open_join_close() {
        let mut tr = Tracker::new(120, 1, Vec::new());
        assert!(tr.on_verdict(1, t(0), &v(0, "calm")).is_empty());
        let e = tr.on_verdict(2, t(10), &v(1, "Pan smoking"));
        assert_eq!(changes(&e), [IncidentChange::Open]);
        assert_eq!(e[0].id, 1);
        // Within the gap: joins, for 40 frames.
        for k in 0..40 {
            let e = tr.on_verdict(3 + k, t(20 + k as i64 * 2), &v(1, "Pan smoking"));
            assert_eq!(changes(&e), [IncidentChange::Join]);
        }
        assert_eq!(tr.open_incidents()[0].frames, 41);
        let last = t(20 + 39 * 2);
        assert_eq!(tr.next_close(), Some(last + Duration::seconds(120)));
        assert!(tr.tick(last + Duration::seconds(119)).is_empty());
        let e = tr.tick(last + Duration::seconds(500));
        assert_eq!(changes(&e), [IncidentChange::Close]);
        assert_eq!(
            e[0].closed_at,
            Some(last + Duration::seconds(120)),
            "not stretched by a late tick"
        );
        assert_eq!(e[0].frames, 41);
        assert!(tr.open_incidents().is_empty());
        // The next confirmed frame opens a new one.
        let e = tr.on_verdict(99, last + Duration::seconds(600), &v(1, "Again"));
        assert_eq!(e[0].id, 2);
        assert_eq!(e[0].change, IncidentChange::Open);
    }

    #[test]
    fn level_rises_and_title_is_the_newest_most_urgent() {
        let mut tr = Tracker::new(120, 7, Vec::new());
        tr.on_verdict(1, t(0), &v(1, "Smoke by the stove"));
        let e = tr.on_verdict(2, t(5), &v(2, "Flames in the pan"));
        assert_eq!(changes(&e), [IncidentChange::Raise]);
        assert_eq!(e[0].level, 2);
        assert_eq!(e[0].title, "Flames in the pan");
        // A lower frame joins but neither lowers nor retitles.
        let e = tr.on_verdict(3, t(10), &v(1, "Smoke clearing"));
        assert_eq!(changes(&e), [IncidentChange::Join]);
        assert_eq!((e[0].level, e[0].title.as_str()), (2, "Flames in the pan"));
        // A newer frame of the same level retitles.
        let e = tr.on_verdict(4, t(15), &v(2, "Fire spreading to the wall"));
        assert_eq!(e[0].title, "Fire spreading to the wall");
        assert_eq!(e[0].key_seq, Some(4));
    }

    #[test]
    fn a_cut_verdict_never_raises_nor_retitles() {
        let mut tr = Tracker::new(120, 1, Vec::new());
        tr.on_verdict(1, t(0), &v(1, "Smoke"));
        let mut cut = v(2, "FIRE");
        cut.truncated = true;
        let e = tr.on_verdict(2, t(5), &cut);
        assert_eq!(changes(&e), [IncidentChange::Join]);
        assert_eq!((e[0].level, e[0].title.as_str()), (1, "Smoke"));
        let raw = Verdict {
            raw: Some("level 2!!".into()),
            ..Verdict::default()
        };
        assert!(tr.on_verdict(3, t(6), &raw).is_empty());
        // A cut verdict alone opens at level 1 at most.
        let mut tr = Tracker::new(120, 1, Vec::new());
        let e = tr.on_verdict(1, t(0), &cut);
        assert_eq!(e[0].level, 1);
    }

    #[test]
    fn a_late_frame_closes_the_old_incident_first() {
        let mut tr = Tracker::new(60, 1, Vec::new());
        tr.on_verdict(1, t(0), &v(1, "a"));
        let e = tr.on_verdict(2, t(200), &v(1, "b"));
        assert_eq!(changes(&e), [IncidentChange::Close, IncidentChange::Open]);
        assert_eq!(e[1].id, 2);
    }

    #[test]
    fn ack_marks_open_incidents_once() {
        let mut tr = Tracker::new(120, 1, Vec::new());
        assert!(tr.ack(None, "console", t(0)).is_empty());
        tr.on_verdict(1, t(0), &v(2, "Fall"));
        assert!(tr.ack(Some(9), "console", t(1)).is_empty(), "unknown id");
        let e = tr.ack(Some(1), "mqtt", t(2));
        assert_eq!(changes(&e), [IncidentChange::Ack]);
        assert_eq!(e[0].acked_by.as_deref(), Some("mqtt"));
        assert!(
            tr.ack(None, "console", t(3)).is_empty(),
            "already acknowledged"
        );
        // It stays open (and acknowledged) until its gap passes.
        assert_eq!(tr.open_incidents().len(), 1);
        let e = tr.tick(t(500));
        assert_eq!(e[0].acked_at, Some(t(2)));
    }

    #[test]
    fn state_restored_from_the_store_goes_on() {
        let mut tr = Tracker::new(120, 1, Vec::new());
        let open = tr.on_verdict(5, t(0), &v(1, "Smoke")).remove(0);
        let mut again = Tracker::new(120, 2, vec![open]);
        let e = again.on_verdict(6, t(30), &v(1, "Smoke"));
        assert_eq!(changes(&e), [IncidentChange::Join]);
        assert_eq!(e[0].frames, 2);
        assert_eq!(duration(&e[0]), Duration::seconds(30));
    }
}
