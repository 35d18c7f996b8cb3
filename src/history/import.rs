//! Importing session logs (`logs/session-*.jsonl`) into the store, once: the rows' unique keys make a second import add nothing.
