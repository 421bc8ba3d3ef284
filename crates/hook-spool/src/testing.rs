//! Test storage for redb: an in-memory "disk" that can fail `write`/`sync_data` on the Nth call
//! (EIO, ENOSPC), run out of space, and "lose power" (keep the synced image plus a random,
//! possibly torn, subset of the writes after the last sync).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use redb::StorageBackend;

/// One change to the disk, in the order redb made it.
#[derive(Clone, Debug)]
pub(crate) enum DiskOp {
    Write(u64, Vec<u8>),
    SetLen(u64),
    Sync,
}

/// When to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The `n`th call (counting from 1, over the disk's life) of `write` fails with `errno`.
    Write { n: u64, errno: i32 },
    /// The `n`th call of `sync_data` fails with `errno`.
    Sync { n: u64, errno: i32 },
    /// Writes and growth past `bytes` fail with ENOSPC (a full disk) until changed.
    Full { bytes: u64 },
}

pub(crate) const EIO: i32 = 5;
pub(crate) const ENOSPC: i32 = 28;

#[derive(Debug, Default)]
pub(crate) struct DiskState {
    /// What reads see (the page cache: survives a process crash, not a power loss).
    pub(crate) data: Vec<u8>,
    /// Every change since the disk was made, for power-loss images.
    pub(crate) log: Vec<DiskOp>,
    /// The image the log starts from.
    pub(crate) base: Vec<u8>,
    pub(crate) writes: u64,
    pub(crate) syncs: u64,
    pub(crate) faults: Vec<Fault>,
    pub(crate) failures: u64,
    pub(crate) record_log: bool,
    /// While set and closed, `sync_data` waits (without holding the disk) until it opens.
    pub(crate) gate: Option<Arc<Gate>>,
}

/// A gate `sync_data` waits at: lets a test hold the writer inside a commit.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    open: Mutex<bool>,
    changed: std::sync::Condvar,
    /// How many syncs are waiting at the gate right now.
    waiting: Mutex<u64>,
}

impl Gate {
    pub(crate) fn set(&self, open: bool) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = open;
        self.changed.notify_all();
    }

    pub(crate) fn waiting(&self) -> u64 {
        *self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pass(&self) {
        *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*open {
            open = self
                .changed
                .wait(open)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(open);
        *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
    }
}

/// A disk shared by every backend opened on it (a reopen sees what was written before).
#[derive(Clone, Debug, Default)]
pub(crate) struct Disk(pub(crate) Arc<Mutex<DiskState>>);

impl Disk {
    pub(crate) fn new() -> Disk {
        Disk::default()
    }

    pub(crate) fn from_image(image: Vec<u8>) -> Disk {
        let disk = Disk::new();
        disk.with(|s| {
            s.base = image.clone();
            s.data = image;
        });
        disk
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut DiskState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn backend(&self) -> MemBackend {
        MemBackend { disk: self.clone() }
    }

    /// Starts recording changes from the current content (the "synced" base image).
    pub(crate) fn start_log(&self) {
        self.with(|s| {
            s.base = s.data.clone();
            s.log.clear();
            s.record_log = true;
        });
    }

    pub(crate) fn add_fault(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault));
    }

    pub(crate) fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }

    pub(crate) fn counts(&self) -> (u64, u64) {
        self.with(|s| (s.writes, s.syncs))
    }
}

/// What survives a power cut after the first `cut` logged operations: everything up to the
/// last sync before `cut`, then each later operation kept or dropped by `keep`, a kept write
/// possibly torn at 512-byte sectors by `tear` (sector index -> keep it).
pub(crate) fn power_loss_image(
    base: &[u8],
    log: &[DiskOp],
    cut: usize,
    rng: &mut Rng,
    torn: bool,
) -> Vec<u8> {
    let mut image = base.to_vec();
    let last_sync = log[..cut]
        .iter()
        .rposition(|op| matches!(op, DiskOp::Sync))
        .map_or(0, |i| i + 1);
    for (i, op) in log[..cut].iter().enumerate() {
        let durable = i < last_sync;
        if !durable && rng.below(2) == 0 {
            continue; // this one never reached the disk
        }
        match op {
            DiskOp::Sync => {}
            DiskOp::SetLen(len) => image.resize(*len as usize, 0),
            DiskOp::Write(offset, data) => {
                let offset = *offset as usize;
                if image.len() < offset + data.len() {
                    image.resize(offset + data.len(), 0);
                }
                if durable || !torn {
                    image[offset..offset + data.len()].copy_from_slice(data);
                } else {
                    for (s, chunk) in data.chunks(512).enumerate() {
                        if rng.below(2) == 0 {
                            let at = offset + s * 512;
                            image[at..at + chunk.len()].copy_from_slice(chunk);
                        }
                    }
                }
            }
        }
    }
    image
}

/// A small deterministic generator (xorshift64*), for seeded loops.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A redb backend on a [`Disk`].
#[derive(Debug)]
pub(crate) struct MemBackend {
    disk: Disk,
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl StorageBackend for MemBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.disk.with(|s| s.data.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.disk.with(|s| {
            let start = offset as usize;
            let end = start + out.len();
            if end > s.data.len() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the disk",
                ));
            }
            out.copy_from_slice(&s.data[start..end]);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.disk.with(|s| {
            for fault in &s.faults {
                if let Fault::Full { bytes } = fault
                    && len > *bytes
                    && len > s.data.len() as u64
                {
                    s.failures += 1;
                    return Err(errno(ENOSPC));
                }
            }
            s.data.resize(len as usize, 0);
            if s.record_log {
                s.log.push(DiskOp::SetLen(len));
            }
            Ok(())
        })
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        if let Some(gate) = self.disk.with(|s| s.gate.clone()) {
            gate.pass();
        }
        self.disk.with(|s| {
            s.syncs += 1;
            let n = s.syncs;
            for fault in &s.faults {
                if let Fault::Sync { n: at, errno: e } = fault
                    && *at == n
                {
                    s.failures += 1;
                    return Err(errno(*e));
                }
            }
            if s.record_log {
                s.log.push(DiskOp::Sync);
            }
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.disk.with(|s| {
            s.writes += 1;
            let n = s.writes;
            let end = offset + data.len() as u64;
            for fault in &s.faults {
                match fault {
                    Fault::Write { n: at, errno: e } if *at == n => {
                        s.failures += 1;
                        return Err(errno(*e));
                    }
                    Fault::Full { bytes } if end > *bytes => {
                        s.failures += 1;
                        return Err(errno(ENOSPC));
                    }
                    _ => {}
                }
            }
            let end = end as usize;
            if s.data.len() < end {
                s.data.resize(end, 0);
            }
            s.data[offset as usize..end].copy_from_slice(data);
            if s.record_log {
                s.log.push(DiskOp::Write(offset, data.to_vec()));
            }
            Ok(())
        })
    }
}
