//! A configuration file through the public `Loader`, once as each format it reads (`.json`,
//! `.yaml`, `.toml`), with no environment: the file decoders, the weak typing, the section
//! decoding and the validation.
//!
//! Properties: no panic, no hang, bounded memory (the script's `-rss_limit_mb` and
//! `-malloc_limit_mb`; YAML alias bombs included: the loader refuses excessive aliasing); a
//! configuration the loader accepts validates again and has a hook target.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use hook_config::Loader;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // On tmpfs when there is one: a write and a read per format per input.
        let base = std::path::Path::new("/dev/shm");
        let dir = if base.is_dir() {
            tempfile::Builder::new()
                .prefix("hook-fuzz-")
                .tempdir_in(base)
        } else {
            tempfile::Builder::new().prefix("hook-fuzz-").tempdir()
        }
        .expect("a temporary config dir");
        dir.keep()
    })
}

fuzz_target!(|data: &[u8]| {
    // The loader reads the file as UTF-8; anything else is one I/O error, not worth the writes.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for ext in ["json", "yaml", "toml"] {
        let name = format!("sftpgo.{ext}");
        std::fs::write(dir().join(&name), text).expect("write the config file");
        let loaded = Loader::new()
            .config_dir(dir())
            .config_file(&name)
            .env_vars(std::iter::empty::<(String, String)>())
            .load();
        match loaded {
            Ok(loaded) => {
                let config = &loaded.config;
                config
                    .validate()
                    .expect("a loaded configuration validates again");
                config
                    .target()
                    .expect("a loaded configuration has a target");
                let _ = format!("{config:?}");
            }
            Err(err) => {
                assert!(!err.to_string().is_empty(), "an error says something");
            }
        }
    }
});
