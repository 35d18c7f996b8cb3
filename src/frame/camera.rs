//! USB webcams through nokhwa (V4L2 on Linux): opened once and streamed.
//! PLACEHOLDER: replaced by the full implementation.
