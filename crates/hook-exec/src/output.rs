//! Capped capture of stdout and stderr (D7): keep the last `cap` bytes, count the rest.

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;

use hook_core::CapturedOutput;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Size of each read from a pipe.
const READ_CHUNK: usize = 32 * 1024;

/// The last `cap` bytes written to a stream, and how many bytes came before them.
#[derive(Debug)]
pub(crate) struct Tail {
    cap: usize,
    buf: Vec<u8>,
    total: u64,
}

impl Tail {
    pub(crate) fn new(cap: usize) -> Self {
        Tail {
            cap,
            buf: Vec::new(),
            total: 0,
        }
    }

    /// Appends `chunk`, keeping memory below `2 * cap` (plus nothing when `cap` is 0).
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        if self.cap == 0 {
            return;
        }
        if chunk.len() >= self.cap {
            self.buf.clear();
            self.buf.extend_from_slice(&chunk[chunk.len() - self.cap..]);
            return;
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > self.cap.saturating_mul(2) {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
        }
    }

    /// The kept bytes (at most `cap`) and the number discarded.
    pub(crate) fn finish(mut self) -> (Vec<u8>, u64) {
        if self.buf.len() > self.cap {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
        }
        let dropped = self.total - self.buf.len() as u64;
        (self.buf, dropped)
    }
}

/// The read end of a pipe, non-blocking and registered with the runtime for readability only.
type Receiver = AsyncFd<OwnedFd>;

/// Reads once from `pipe` when it is readable and hands the bytes read to `sink`; returns how
/// many were read (0 at end of file). Cancel-safe.
///
/// The bytes land in an uninitialised buffer on the stack, used only inside the synchronous read:
/// a hook that writes nothing (the common case) costs no allocation and no zeroing.
async fn read_pipe(pipe: &Receiver, mut sink: impl FnMut(&[u8])) -> std::io::Result<usize> {
    loop {
        let mut ready = pipe.readable().await?;
        let read = ready.try_io(|fd| {
            let mut buf = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let (bytes, _) = rustix::io::read(fd.get_ref(), &mut buf)?;
            sink(bytes);
            Ok(bytes.len())
        });
        match read {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// One stream being read: the pipe (until EOF or error) and its tail.
#[derive(Debug)]
pub(crate) struct Capture {
    pipe: Option<Receiver>,
    tail: Tail,
}

impl Capture {
    pub(crate) fn new(read_end: OwnedFd, cap: usize) -> std::io::Result<Self> {
        // One FIONBIO makes our fresh pipe end non-blocking (tokio's pipe type would also fstat
        // it and read-modify-write its status flags: three syscalls).
        rustix::io::ioctl_fionbio(&read_end, true)?;
        // `with_interest` is deprecated because an arbitrary `AsRawFd` may change or close its fd
        // while registered; an `OwnedFd` cannot, so this use is sound (and needs no `unsafe`).
        #[allow(deprecated)]
        let pipe = AsyncFd::with_interest(read_end, Interest::READABLE)?;
        Ok(Capture {
            pipe: Some(pipe),
            tail: Tail::new(cap),
        })
    }

    /// Whether the pipe is still open (no EOF seen yet).
    pub(crate) fn is_open(&self) -> bool {
        self.pipe.is_some()
    }

    /// Reads once. Cancel-safe: nothing is lost if the future is dropped before it completes.
    pub(crate) async fn read_once(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return std::future::pending().await;
        };
        let tail = &mut self.tail;
        match read_pipe(pipe, |bytes| tail.push(bytes)).await {
            Ok(0) => self.pipe = None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => self.pipe = None,
        }
    }

    /// Stops capturing. A pipe still open (a background descendant holds it) keeps being read and
    /// discarded by a detached task until EOF, so that descendant never blocks or gets `EPIPE`.
    pub(crate) fn finish(mut self) -> Tail {
        if let Some(pipe) = self.pipe.take() {
            tokio::spawn(discard(pipe));
        }
        self.tail
    }
}

async fn discard(pipe: Receiver) {
    loop {
        match read_pipe(&pipe, |_| {}).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Both tails as the shared outcome type.
pub(crate) fn captured(stdout: Tail, stderr: Tail) -> CapturedOutput {
    let (out, out_dropped) = stdout.finish();
    let (err, err_dropped) = stderr.finish();
    CapturedOutput::new(out, out_dropped, err, err_dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_cap_bytes() {
        let mut t = Tail::new(4);
        for chunk in [&b"ab"[..], b"cde", b"f", b"", b"gh"] {
            t.push(chunk);
        }
        assert_eq!(t.finish(), (b"efgh".to_vec(), 4));

        let mut t = Tail::new(4);
        t.push(b"0123456789");
        t.push(b"x");
        assert_eq!(t.finish(), (b"789x".to_vec(), 7));

        let mut t = Tail::new(8);
        t.push(b"abc");
        assert_eq!(t.finish(), (b"abc".to_vec(), 0));
    }

    #[test]
    fn memory_stays_below_twice_the_cap() {
        let mut t = Tail::new(100);
        for i in 0..10_000u32 {
            t.push(&i.to_le_bytes()[..(i % 4) as usize]);
            assert!(t.buf.len() <= 200);
        }
    }

    #[test]
    fn zero_cap_keeps_nothing() {
        let mut t = Tail::new(0);
        t.push(b"abc");
        assert_eq!(t.finish(), (Vec::new(), 3));
    }
}
