//! The student's vision check: a model known to take no images is refused before it is
//! asked about any frame.

use super::shared::Shared;
use crate::event::Event;
use crate::model::{ModelClient, ModelError};

/// Ask the server whether the student model takes images. A model known to be text-only
/// is refused (unless `text_only` is set): every answer would be about no image at all.
/// Returns false when refused.
pub(super) async fn check_vision(shared: &Shared, client: &ModelClient) -> bool {
    match client.vision().await {
        Ok(Some(false)) => {
            let e = ModelError::text_only_model(client.model());
            let hint = e.hint(crate::event::Role::Student, client.model());
            shared
                .student_health
                .failing(&shared.emitter, &e, client.model());
            shared.emitter.emit(Event::StudentRefused {
                reason: e.to_string(),
                hint,
            });
            false
        }
        Ok(None) => {
            shared.emitter.emit(Event::Warning {
                message: format!(
                    "cannot verify that the student model {} accepts images (the server does \
                     not say); its first answers will show",
                    client.model()
                ),
            });
            true
        }
        // Unknown (an older server, a passing failure): the answers will tell.
        Ok(Some(true)) | Err(_) => true,
    }
}
