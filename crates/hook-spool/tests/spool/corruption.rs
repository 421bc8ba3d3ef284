//! Damaged files at open: set aside as `spool.redb.corrupt-<unix time>`, reported, new spool.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use hook_spool::{OpenReport, State};

use crate::{event, open};

/// A spool file holding 2,000 pending events, closed cleanly.
fn filled(dir: &Path) -> u64 {
    let (spool, _) = open(dir);
    for n in 0..2000 {
        spool.append(&event(n)).unwrap();
    }
    spool.flush().wait().unwrap();
    spool.close().unwrap();
    drop(spool);
    fs::metadata(dir.join("spool.redb")).unwrap().len()
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn overwrite(file: &Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// Opens the damaged spool (never panicking), and checks what a damaged file must lead to.
fn open_damaged(dir: &Path, damaged_size: u64) -> OpenReport {
    let (spool, report) = catch_unwind(AssertUnwindSafe(|| open(dir)))
        .unwrap_or_else(|_| panic!("Spool::open panicked on a damaged file"));
    let corrupt = report.corrupt.clone().expect("the damage is reported");
    assert!(report.created);
    assert_eq!(corrupt.size, damaged_size);
    let name = corrupt
        .renamed_to
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let secs = name
        .strip_prefix("spool.redb.corrupt-")
        .unwrap_or_else(|| panic!("renamed to {name}"));
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000, "{name}");
    assert_eq!(
        fs::metadata(&corrupt.renamed_to).unwrap().len(),
        damaged_size,
        "kept as it was"
    );
    assert!(!corrupt.reason.is_empty());
    assert!(corrupt.to_string().contains("set aside"), "{corrupt}");
    assert_eq!(spool.counters().corrupt_files, 1);
    // A new, empty spool that works.
    assert_eq!((report.pending, report.deferred, report.dead), (0, 0, 0));
    let e = event(7);
    spool.append_durable(&e).unwrap().wait().unwrap();
    assert_eq!(spool.list(State::Pending, None, 10).unwrap().len(), 1);
    spool.close().unwrap();
    drop(spool);
    let (_spool, again) = open(dir);
    assert!(again.corrupt.is_none(), "the new file opens cleanly");
    assert_eq!(again.pending, 1);
    report
}

#[test]
fn garbage_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let size = filled(dir.path());
    overwrite(&dir.path().join("spool.redb"), 0, &garbage(4096, 1));
    let report = open_damaged(dir.path(), size);
    eprintln!("{}", report.corrupt.unwrap());
}

/// Damages pages of the filled spool in `dir` one at a time, in `pages` order, until one whose
/// damage the open notices; each unnoticed damage must be harmless (every record still there).
/// Leaves the file damaged at the page found, and returns it.
fn damage_first_used_page(dir: &Path, pages: impl Iterator<Item = u64>) -> u64 {
    let file = dir.join("spool.redb");
    let pristine = fs::read(&file).unwrap();
    for page in pages {
        fs::write(&file, &pristine).unwrap();
        overwrite(&file, page * 4096, &garbage(4096, page + 1));
        let (spool, report) = catch_unwind(AssertUnwindSafe(|| open(dir)))
            .unwrap_or_else(|_| panic!("Spool::open panicked, page {page}"));
        if let Some(corrupt) = report.corrupt {
            // Put the damaged file back for the caller's open.
            drop(spool);
            fs::remove_file(&file).unwrap();
            fs::rename(&corrupt.renamed_to, &file).unwrap();
            return page;
        }
        // Damage to an unused page is harmless: every record is still there.
        assert_eq!(
            report.pending, 2000,
            "undetected damage at page {page} lost records"
        );
        assert_eq!(spool.list(State::Pending, None, 5000).unwrap().len(), 2000);
        spool.close().unwrap();
        drop(spool);
    }
    panic!("no damaged page was noticed");
}

#[test]
fn garbage_in_the_middle() {
    // Around a quarter and the middle of the file (the page there may be free: then the next).
    for fraction in [4u64, 2] {
        let dir = tempfile::tempdir().unwrap();
        let size = filled(dir.path());
        let start = size / 4096 / fraction;
        let page = damage_first_used_page(dir.path(), start..size / 4096);
        assert!(
            page < start + 64,
            "a used page near 1/{fraction} of the file"
        );
        open_damaged(dir.path(), size);
    }
}

#[test]
fn garbage_at_the_end() {
    // The last pages that hold records (redb grows the file ahead of its data, so the very last
    // pages may be unused): damage the last one whose damage is noticed.
    let dir = tempfile::tempdir().unwrap();
    let size = filled(dir.path());
    let page = damage_first_used_page(dir.path(), (0..size / 4096).rev());
    assert!(
        page * 4096 > size / 2,
        "the damaged page {page} is in the second half"
    );
    open_damaged(dir.path(), size);
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let size = filled(dir.path());
    let file = dir.path().join("spool.redb");
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(size / 2).unwrap();
    drop(f);
    open_damaged(dir.path(), size / 2);
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("spool.redb"), b"").unwrap();
    open_damaged(dir.path(), 0);
}

#[test]
fn a_file_that_is_not_a_spool() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"this is not a redb file\n".repeat(1000);
    fs::write(dir.path().join("spool.redb"), &text).unwrap();
    open_damaged(dir.path(), text.len() as u64);
}

#[test]
fn a_redb_file_without_spool_tables_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    // An empty spool, then its meta table emptied through a second damaged byte range would be
    // contrived; instead: a zero-filled file of one page.
    fs::write(dir.path().join("spool.redb"), vec![0u8; 4096]).unwrap();
    open_damaged(dir.path(), 4096);
}

#[test]
fn two_damaged_files_in_one_second_get_distinct_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        fs::write(dir.path().join("spool.redb"), b"junk").unwrap();
        let (spool, report) = open(dir.path());
        names.push(report.corrupt.unwrap().renamed_to);
        drop(spool);
    }
    assert_ne!(names[0], names[1]);
    assert!(names.iter().all(|n| n.exists()));
}

/// The file damaged while the spool is open (by another program, a failing disk): reads and
/// commits return typed results, nothing panics, and the next open verifies (setting the file
/// aside if needed) and works.
#[test]
fn damage_while_open_never_panics() {
    for (i, fraction) in [8u64, 3, 2].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let size = filled(dir.path());
        let (spool, _) = open(dir.path());
        let file = dir.path().join("spool.redb");
        overwrite(
            &file,
            (size / fraction) & !4095,
            &garbage(16 * 1024, 10 + i as u64),
        );
        let result = catch_unwind(AssertUnwindSafe(|| {
            let _ = spool.list(State::Pending, None, 5000);
            let _ = spool.status();
            for n in 0..100 {
                if let Ok(done) = spool.append_durable(&event(100_000 + n)) {
                    let _ = done.wait();
                }
            }
            let _ = spool.flush().wait();
            let _ = spool.list(State::Pending, None, 5000);
        }));
        assert!(
            result.is_ok(),
            "a spool call panicked after damage at 1/{fraction}"
        );
        drop(spool);
        let (spool, _report) = catch_unwind(AssertUnwindSafe(|| open(dir.path())))
            .unwrap_or_else(|_| panic!("open panicked after damage at 1/{fraction}"));
        spool.append_durable(&event(1)).unwrap().wait().unwrap();
    }
}

/// For inspection tools: a damaged file is reported and left alone.
#[test]
fn damaged_file_left_alone_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let size = filled(dir.path());
    let file = dir.path().join("spool.redb");
    overwrite(&file, 0, &garbage(4096, 99));
    let damaged = fs::read(&file).unwrap();
    let mut options = crate::options(dir.path());
    options.set_aside_damaged = false;
    let err = hook_spool::Spool::open(options).unwrap_err();
    assert_eq!(err.kind(), hook_spool::SpoolErrorKind::Damaged);
    assert!(err.to_string().contains("spool.redb is damaged"), "{err}");
    assert_eq!(err.path(), Some(file.as_path()));
    assert_eq!(fs::read(&file).unwrap(), damaged, "untouched");
    assert_eq!(fs::metadata(&file).unwrap().len(), size);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("corrupt")), "{names:?}");
    // The default still sets it aside.
    open_damaged(dir.path(), size);
}
