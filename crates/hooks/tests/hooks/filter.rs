//! The protocol filter (spec 1.2, D15): SFTPGo's four by default, widened on request; filtered
//! events are answered `Fired::Filtered` and counted, never delivered.

use std::time::Duration;

use hooks::{DisconnectEvent, Dispatcher, DispatcherOptions, Fired, HooksSection, Protocol};

use crate::support::{TestHook, recording};

fn event_for(protocol: Protocol) -> DisconnectEvent {
    DisconnectEvent::new("10.0.0.1", protocol, "u", Duration::from_millis(7))
}

async fn delivered_protocols(
    options: DispatcherOptions,
) -> (Vec<Fired>, Vec<Protocol>, u64, usize) {
    let hook = TestHook::new(Duration::from_millis(1));
    let (options, outcomes) = recording(options);
    let dispatcher = Dispatcher::new(hook.clone(), options);
    let fired: Vec<Fired> = Protocol::ALL
        .iter()
        .map(|p| dispatcher.fire(event_for(*p)).unwrap())
        .collect();
    let report = dispatcher.shutdown(Duration::from_secs(60)).await;
    assert_eq!(report.delivered, report.accepted);
    let mut seen: Vec<Protocol> = hook.seen().iter().map(|s| s.event.protocol()).collect();
    seen.sort();
    let callbacks = outcomes.lock().unwrap().len();
    (fired, seen, report.filtered, callbacks)
}

#[tokio::test(start_paused = true)]
async fn default_filter_fires_sftp_scp_ssh_ftp_only() {
    let (fired, seen, filtered, callbacks) =
        delivered_protocols(DispatcherOptions::default()).await;
    use Fired::{Filtered, Queued};
    assert_eq!(
        fired,
        [Queued, Queued, Queued, Queued, Filtered, Filtered, Filtered]
    );
    assert_eq!(
        seen,
        [Protocol::Sftp, Protocol::Scp, Protocol::Ssh, Protocol::Ftp]
    );
    assert_eq!((filtered, callbacks), (3, 4));
}

#[tokio::test(start_paused = true)]
async fn widened_filter_fires_every_protocol() {
    let (fired, seen, filtered, _) =
        delivered_protocols(DispatcherOptions::default().with_all_protocols()).await;
    assert!(fired.iter().all(|f| f.is_queued()));
    assert_eq!(seen, Protocol::ALL);
    assert_eq!(filtered, 0);
}

#[tokio::test(start_paused = true)]
async fn filter_from_the_hooks_section() {
    let mut section = HooksSection::default();
    section.protocols = vec!["DAV".into(), "FTP".into()];
    let options = DispatcherOptions::from_config(&section).unwrap();
    let (_, seen, filtered, _) = delivered_protocols(options).await;
    assert_eq!(seen, [Protocol::Ftp, Protocol::Dav]);
    assert_eq!(filtered, 5);
}
