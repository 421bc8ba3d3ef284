//! The [`Hook`] trait every backend implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Delivery, DisconnectEvent, HookError};

/// A post-disconnect hook: something that is told, once per event, that a connection ended.
///
/// # Contract
///
/// * **One call per event.** The dispatcher calls [`on_disconnect`](Hook::on_disconnect) once for
///   each event; a backend that retries (HTTP) does so inside the call and reports the number of
///   attempts in the [`Delivery`] or [`HookError`].
/// * **Calls overlap.** Many events are delivered at once (up to the dispatcher's in-flight
///   limit), so implementations are `Send + Sync` and must not serialise calls behind a lock held
///   across an `.await`.
/// * **The backend enforces its own timeouts.** A program hook applies `command.timeout` (and
///   kills the process group); an HTTP hook applies `http.timeout` per attempt and the overall
///   delivery deadline. Callers never need to wrap the future in a timeout to stay safe, although
///   they may.
/// * **Dropping the future cancels the hook** and cleans up: a program's process group is killed
///   and reaped, an HTTP request is aborted. Nothing is left behind.
/// * **Never panics on bad input.** An event value that cannot be passed (a NUL byte in a
///   username for a program) is an [`ErrorKind::InvalidEvent`](crate::ErrorKind::InvalidEvent)
///   error.
/// * **Errors carry no secrets.** URL passwords and configured header values are redacted in the
///   error's message, source and `Debug`.
///
/// The trait is object-safe: servers hold an `Arc<dyn Hook>` chosen from configuration.
///
/// ```
/// use std::time::{Duration, Instant};
/// use hook_core::{async_trait, Backend, Delivery, DisconnectEvent, Hook, HookError};
///
/// /// A custom backend: collects events in memory.
/// #[derive(Debug, Default)]
/// struct Collect(std::sync::Mutex<Vec<String>>);
///
/// #[async_trait]
/// impl Hook for Collect {
///     async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
///         let started = Instant::now();
///         self.0.lock().unwrap().push(event.username().to_owned());
///         Ok(Delivery::new(Backend::Custom("collect"), 1, started.elapsed()))
///     }
/// }
///
/// let hook: std::sync::Arc<dyn Hook> = std::sync::Arc::new(Collect::default());
/// # let _ = hook;
/// ```
#[async_trait]
pub trait Hook: Send + Sync + std::fmt::Debug {
    /// Delivers one event; resolves when it was delivered or definitely failed.
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError>;
}

#[async_trait]
impl<H: Hook + ?Sized> Hook for Arc<H> {
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        (**self).on_disconnect(event).await
    }
}

#[async_trait]
impl<H: Hook + ?Sized> Hook for Box<H> {
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        (**self).on_disconnect(event).await
    }
}

#[async_trait]
impl<H: Hook + ?Sized> Hook for &H {
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        (**self).on_disconnect(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Protocol};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    #[derive(Debug)]
    struct Echo;

    #[async_trait]
    impl Hook for Echo {
        async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
            if event.username().is_empty() {
                return Err(HookError::new(crate::ErrorKind::InvalidEvent, "empty"));
            }
            Ok(Delivery::new(Backend::Custom("echo"), 1, event.duration()))
        }
    }

    fn block_on<F: Future>(fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn forwarding_impls_are_object_safe_and_forward() {
        let event = DisconnectEvent::new("1.2.3.4", Protocol::Sftp, "u", Duration::from_millis(9));
        let arc: Arc<dyn Hook> = Arc::new(Echo);
        let boxed: Box<dyn Hook> = Box::new(Echo);
        let arc_of_arc: Arc<Arc<dyn Hook>> = Arc::new(arc.clone());
        for hook in [&arc as &dyn Hook, &boxed, &arc_of_arc] {
            let d = block_on(hook.on_disconnect(&event)).unwrap();
            assert_eq!(d.elapsed(), Duration::from_millis(9));
            assert_eq!(d.backend(), Backend::Custom("echo"));
        }
        let anon = DisconnectEvent::new("1.2.3.4", Protocol::Sftp, "", Duration::ZERO);
        let err = block_on(arc.on_disconnect(&anon)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidEvent);
    }
}
