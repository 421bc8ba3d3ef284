//! The stream, created with 2.9-honoured fields only.

use async_nats::jetstream::{self, stream};
use hook_config::NatsSection;
use hook_core::{ErrorKind, HookError};

use crate::connect::error_chain;

/// Gets the stream `nats.stream`, creating it when missing: subjects `<prefix>.>`, file storage,
/// `nats.replicas`, `nats.duplicate_window`. An existing stream is used as it is (never updated).
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    nats: &NatsSection,
) -> Result<stream::Stream, HookError> {
    js.get_or_create_stream(stream::Config {
        name: nats.stream.clone(),
        subjects: vec![nats.stream_subjects()],
        storage: stream::StorageType::File,
        num_replicas: nats.replicas,
        duplicate_window: nats.duplicate_window(),
        ..Default::default()
    })
    .await
    .map_err(|e| {
        HookError::new(
            ErrorKind::Transport,
            format!(
                "nats: cannot get or create stream {:?}: {}",
                nats.stream,
                error_chain(&e)
            ),
        )
    })
}
