//! The history store: every answer, escalation, verdict, incident, alert, skill change and offline span in SQLite, so what happened while nobody watched can be reviewed.
//!
//! `schema.rs` opens the store (WAL, versioned migrations, a newer store refused, a
//! broken file moved aside); `rows.rs` turns engine events into rows; `writer.rs` writes
//! them off the frame path (bounded queue, batched, paused on a full disk);
//! `incident.rs` groups confirmed frames into incidents (pure); `query.rs` reads it back
//! (filters, paging, the away summary); `paged.rs` bounds it for a console (pages, an
//! incident's detail, a saved frame); `presence.rs` keeps when each user's consoles were
//! last seen; `status.rs` is what `check` says of it; `import.rs` brings in old session
//! logs. Storage
//! sits below the engine: nothing here knows a face.

pub mod config;
pub mod import;
pub mod incident;
pub mod paged;
pub mod presence;
pub mod query;
pub mod retention;
pub mod rows;
pub mod schema;
pub mod status;
pub mod writer;

pub use config::{HistoryConfig, IncidentsConfig};
pub use writer::{HistoryHandle, Resume, WriterStatus};

#[cfg(test)]
mod tests;
