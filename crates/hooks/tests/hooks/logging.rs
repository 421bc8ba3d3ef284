//! Logging: a refusal storm gives a few summarised WARN lines, not one per event; each hook call
//! runs in a span with the event's fields.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hooks::{DisconnectEvent, Dispatcher, DispatcherOptions, Protocol};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::support::{TestHook, event};

/// A minimal subscriber that keeps WARN events and new spans as text.
#[derive(Clone, Default)]
struct Capture {
    warns: Arc<Mutex<Vec<String>>>,
    spans: Arc<Mutex<Vec<String>>>,
    next: Arc<AtomicU64>,
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut text = Text(span.metadata().name().to_owned());
        span.record(&mut text);
        self.spans.lock().unwrap().push(text.0);
        Id::from_u64(self.next.fetch_add(1, SeqCst) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::WARN {
            let mut text = Text(String::new());
            event.record(&mut text);
            self.warns.lock().unwrap().push(text.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn with_capture<T>(f: impl FnOnce() -> T) -> (T, Capture) {
    let capture = Capture::default();
    let out = tracing::subscriber::with_default(capture.clone(), f);
    (out, capture)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn a_refusal_storm_is_logged_in_summary() {
    let (report, capture) = with_capture(|| {
        runtime().block_on(async {
            let hook = TestHook::new(Duration::from_secs(1));
            let options = DispatcherOptions::default()
                .with_queue_capacity(1)
                .with_max_in_flight(1);
            let dispatcher = Dispatcher::new(hook, options);
            dispatcher.fire(event("kept")).unwrap();
            for i in 0..1_000 {
                assert!(dispatcher.fire(event(&format!("u{i}"))).is_err());
            }
            assert_eq!(dispatcher.stats().refused_queue_full, 1_000);
            dispatcher.shutdown(Duration::from_secs(60)).await
        })
    });
    assert_eq!((report.delivered, report.refused), (1, 1_000), "{report:?}");
    let warns = capture.warns.lock().unwrap();
    // One line for the first refusal (later ones summarised a second later at most), plus the
    // shutdown summary. Generous: the machine may stall for more than a second.
    assert!(warns.len() >= 2 && warns.len() <= 4, "{warns:#?}");
    assert!(
        warns[0].contains("refused=1") && warns[0].contains("reason=queue_full"),
        "{}",
        warns[0]
    );
    let last = warns.last().unwrap();
    assert!(
        last.contains("refused=1000") && last.contains("delivered=1"),
        "{last}"
    );
}

#[test]
fn each_hook_call_runs_in_a_span_with_the_event_fields() {
    let (report, capture) = with_capture(|| {
        runtime().block_on(async {
            let dispatcher = Dispatcher::new(
                TestHook::new(Duration::from_millis(1)),
                DispatcherOptions::default(),
            );
            let ev = DisconnectEvent::new(
                "192.0.2.1",
                Protocol::Ftp,
                "alice",
                Duration::from_millis(1234),
            );
            dispatcher.fire(ev).unwrap();
            dispatcher.shutdown(Duration::from_secs(60)).await
        })
    });
    assert_eq!(report.delivered, 1);
    let spans = capture.spans.lock().unwrap();
    let hook_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.starts_with("post_disconnect_hook"))
        .collect();
    assert_eq!(
        hook_spans,
        ["post_disconnect_hook protocol=FTP ip=192.0.2.1 username=alice duration_ms=1234"],
        "{spans:#?}"
    );
    assert!(capture.warns.lock().unwrap().is_empty());
}
