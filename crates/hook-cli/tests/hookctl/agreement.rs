//! Issue 11, "Also": every configuration `hookctl check` accepts is accepted by `hookctl fire`
//! and by a server's start-up path (`Loader` + `DispatcherOptions::from_config` + `build_hook`),
//! and every configuration one of them refuses, the other two refuse with the same error.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;

use crate::support::*;
use hook_test_support::{Pki, Response, TestServer, write_script};

/// What the generated configurations refer to: a program, an endpoint answering 200, TLS files
/// good and bad. Shared by every case.
struct World {
    dir: tempfile::TempDir,
    script: String,
    url: String,
    pki: Pki,
    _server: TestServer,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = write_script(dir.path(), "hook.sh", "#!/bin/sh\nexit 0\n");
        write(dir.path(), "empty.pem", "");
        write(dir.path(), "garbage.pem", "not PEM at all\n");
        std::fs::create_dir(dir.path().join("adir")).unwrap();
        let server = TestServer::builder()
            .default_response(Response::ok())
            .start_blocking();
        World {
            url: server.url("/hook?token=t0ken"),
            script: script.to_str().unwrap().to_owned(),
            dir,
            pki: Pki::new(),
            _server: server,
        }
    })
}

#[derive(Clone, Debug)]
struct Case {
    target: u8,
    /// `(section, key, JSON value)`, later entries for the same key winning.
    settings: Vec<(&'static str, &'static str, String)>,
}

const LIMITS: &[&str] = &[
    "1",
    "150",
    "0",
    "-1",
    "2305843009213693951",
    "2305843009213693952",
    "9223372036854775807",
    "\"12\"",
];

/// Every key with values valid, on the boundary and invalid.
const KEYS: &[(&str, &str, &[&str])] = &[
    (
        "http",
        "timeout",
        &["20", "0.5", "0", "-1", "1e300", "\"NaN\"", "\"abc\""],
    ),
    ("http", "retry_max", &["0", "-1", "\"1\""]),
    ("http", "retry_wait_min", &["0", "2", "-3"]),
    ("http", "retry_wait_max", &["0", "30", "-1"]),
    (
        "http",
        "ca_certificates",
        &[
            "[]",
            "[\"CA\"]",
            "[\"missing.pem\"]",
            "[\"empty.pem\"]",
            "[\"garbage.pem\"]",
            "[\"adir\"]",
            "[\"\"]",
            "[\"a/..\"]",
        ],
    ),
    (
        "http",
        "certificates",
        &[
            "[]",
            "[{\"cert\": \"CLIENT_CERT\", \"key\": \"CLIENT_KEY\"}]",
            "[{\"cert\": \"CLIENT_CERT\", \"key\": \"garbage.pem\"}]",
            "[{\"cert\": \"CLIENT_CERT\", \"key\": \"adir\"}]",
            "[{\"cert\": \"empty.pem\", \"key\": \"CLIENT_KEY\"}]",
            "[{\"cert\": \"adir\", \"key\": \"CLIENT_KEY\"}]",
            "[{\"cert\": \"CLIENT_KEY\", \"key\": \"CLIENT_CERT\"}]",
        ],
    ),
    ("http", "skip_tls_verify", &["true", "false", "\"maybe\""]),
    (
        "http",
        "headers",
        &[
            "[]",
            "[{\"key\": \"X-Api-Key\", \"value\": \"s3cret\"}]",
            "[{\"key\": \"bad key\", \"value\": \"v\"}]",
            "[{\"key\": \"X-A\", \"value\": \"a\\r\\nb\"}]",
            "[{\"key\": \"\", \"value\": \"dropped\"}]",
            "[{\"key\": \"X-A\", \"value\": \"v\", \"url\": \"http://h/\\u0001\"}]",
        ],
    ),
    (
        "command",
        "timeout",
        &["30", "0", "1", "300", "301", "\"10\""],
    ),
    (
        "command",
        "env",
        &["[]", "[\"A=1\"]", "[\"A\"]", "\"A=1, B=2\""],
    ),
    (
        "command",
        "commands",
        &[
            "[]",
            "[{\"path\": \"SCRIPT\", \"timeout\": 5, \"args\": [\"x\"]}]",
            "[{\"path\": \"\"}]",
            "[{\"path\": \"SCRIPT\", \"timeout\": 400}]",
            "[{\"path\": \"SCRIPT\", \"hook\": \"nope\"}]",
        ],
    ),
    ("hooks", "queue_capacity", LIMITS),
    ("hooks", "max_in_flight", LIMITS),
    (
        "hooks",
        "protocols",
        &[
            "[\"SFTP\"]",
            "[]",
            "[\"sftp\"]",
            "[\"DAV\", \"SFTP\"]",
            "\"FTP, SSH\"",
        ],
    ),
    (
        "hooks",
        "delivery_deadline",
        &["120", "0", "-1", "1e300", "0.001"],
    ),
    ("hooks", "retry_after_max", &["null", "0", "-1", "60"]),
    ("hooks", "kill_grace", &["2", "0", "-1", "1e300"]),
    ("hooks", "output_cap", &["0", "8192", "-1", "1099511627776"]),
    ("hooks", "shutdown_deadline", &["30", "0", "-1", "\"inf\""]),
    ("hooks", "bogus", &["1"]),
];

fn setting() -> impl Strategy<Value = (&'static str, &'static str, String)> {
    (0..KEYS.len(), any::<proptest::sample::Index>()).prop_map(|(k, i)| {
        let (section, key, values) = KEYS[k];
        (section, key, values[i.index(values.len())].to_owned())
    })
}

fn case() -> impl Strategy<Value = Case> {
    (0u8..3, proptest::collection::vec(setting(), 0..5))
        .prop_map(|(target, settings)| Case { target, settings })
}

fn section(case: &Case, name: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (section, key, value) in &case.settings {
        if *section == name {
            pairs.retain(|(k, _)| k != key);
            pairs.push((key, value));
        }
    }
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    format!("{{{}}}", body.join(", "))
}

fn render(case: &Case, w: &World) -> String {
    let hook = match case.target {
        0 => w.script.clone(),
        1 => w.url.clone(),
        _ => String::new(),
    };
    let text = format!(
        "{{\"common\": {{\"post_disconnect_hook\": \"{hook}\"}}, \"http\": {}, \"command\": {}, \"hooks\": {}}}",
        section(case, "http"),
        section(case, "command"),
        section(case, "hooks")
    );
    text.replace("SCRIPT", &w.script)
        .replace(
            "\"CA\"",
            &format!("\"{}\"", w.pki.ca().cert_path().display()),
        )
        .replace(
            "CLIENT_CERT",
            &w.pki.client().cert_path().display().to_string(),
        )
        .replace(
            "CLIENT_KEY",
            &w.pki.client().key_path().display().to_string(),
        )
}

/// A server's start-up path, in this process.
fn server_startup(dir: &Path) -> Result<(), String> {
    let loaded = hooks::Loader::new()
        .config_dir(dir)
        .env_vars(std::iter::empty::<(String, String)>())
        .load()
        .map_err(|e| e.to_string())?;
    let _options =
        hooks::DispatcherOptions::from_config(&loaded.config.hooks).map_err(|e| e.to_string())?;
    let _hook = hooks::build_hook(&loaded.config).map_err(|e| e.to_string())?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=N for a longer run.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn check_fire_and_server_startup_accept_exactly_the_same_configurations(case in case()) {
        let w = world();
        let case_dir = tempfile::tempdir_in(w.dir.path()).unwrap();
        let d = case_dir.path();
        for name in ["empty.pem", "garbage.pem"] {
            std::fs::copy(w.dir.path().join(name), d.join(name)).unwrap();
        }
        std::fs::create_dir(d.join("adir")).unwrap();
        let text = render(&case, w);
        write(d, "sftpgo.json", &text);

        let check = hookctl(d, &["check"], &[]);
        let fire_args: Vec<&str> = if case.target == 2 {
            vec!["fire", "--hook", w.script.as_str()]
        } else {
            vec!["fire"]
        };
        let fire = hookctl(d, &fire_args, &[]);
        let startup = server_startup(d);

        let check_ok = check.status.code() == Some(0);
        let fire_ok = matches!(fire.status.code(), Some(0 | 1));
        prop_assert!(
            matches!(check.status.code(), Some(0 | 2)) && matches!(fire.status.code(), Some(0..=2)),
            "unexpected exit: check {:?} fire {:?}\n{}\n{}", check.status, fire.status,
            stderr(&check), stderr(&fire)
        );
        prop_assert_eq!(
            check_ok, fire_ok,
            "check and fire disagree on {}\ncheck: {}\nfire: {}{}", text, stderr(&check),
            stdout(&fire), stderr(&fire)
        );
        prop_assert_eq!(
            check_ok, startup.is_ok(),
            "check and the server start-up disagree on {}\ncheck: {}\nstart-up: {:?}", text,
            stderr(&check), startup
        );
        if !check_ok {
            // The same error, word for word.
            prop_assert_eq!(stderr(&check), stderr(&fire), "on {}", text);
            let startup_err = startup.unwrap_err();
            prop_assert!(stderr(&check).contains(&startup_err), "{} vs {}", stderr(&check), startup_err);
        }
    }
}
