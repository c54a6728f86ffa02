//! The log's writer: a request appends its line to a buffer in memory and goes on;
//! a thread of its own writes what has gathered to stderr, at most every
//! [`FLUSH_INTERVAL`], in one `write`.
//!
//! Writing each line as it comes (even from a background thread, as
//! tracing-appender's writer does) cost every token request a `write` system call
//! and a thread wake-up: about a twentieth of its CPU. Batched, thousands of lines a
//! second cost a few hundred writes. The buffer is bounded ([`MAX_PENDING_BYTES`]):
//! when stderr cannot keep up (a reader that stopped reading a pipe), further lines
//! are dropped, never waited for, and each is counted in
//! `gatehouse_log_lines_dropped_total`; a warning with the count follows once
//! writing resumes.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long lines may wait before they are written: the batching window.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// The most bytes waiting to be written (tens of thousands of lines); beyond,
/// lines are dropped and counted.
pub const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// The counter of lines dropped because the buffer was full or stderr failed.
pub const DROPPED_LINES_METRIC: &str = "gatehouse_log_lines_dropped_total";

/// Hands each log line to the buffer; cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes what is left when dropped, and stops the writing thread.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the first line arrives in an empty buffer, and at shutdown.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// Lines dropped since the last warning about it.
    dropped: u64,
    closed: bool,
}

impl BatchedWriter {
    /// A writer to `out` (stderr, in the server), and the guard that flushes it.
    pub fn new<W: Write + Send + 'static>(out: W) -> (Self, FlushGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("gatehouse-log".into())
                .spawn(move || shared.write_batches(out))
                .ok()
        };
        let writer = Self {
            shared: shared.clone(),
        };
        (writer, FlushGuard { shared, thread })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the buffer as consistent as ever.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends one whole line (the formatter writes each event with one call).
    fn append(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.closed || state.pending.len() + line.len() > MAX_PENDING_BYTES {
            state.dropped += 1;
            drop(state);
            metrics::counter!(DROPPED_LINES_METRIC).increment(1);
            return;
        }
        let first = state.pending.is_empty();
        state.pending.extend_from_slice(line);
        drop(state);
        if first {
            self.wake.notify_one();
        }
    }

    /// The writing thread: waits for a line, lets [`FLUSH_INTERVAL`] gather more,
    /// writes them all; at shutdown, writes the rest and returns.
    fn write_batches<W: Write>(&self, mut out: W) {
        let mut batch = Vec::new();
        loop {
            let mut state = self.lock();
            while state.pending.is_empty() && !state.closed {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if !state.closed {
                drop(state);
                std::thread::sleep(FLUSH_INTERVAL);
                state = self.lock();
            }
            std::mem::swap(&mut batch, &mut state.pending);
            let dropped = std::mem::take(&mut state.dropped);
            let closed = state.closed;
            drop(state);
            if !batch.is_empty() && out.write_all(&batch).and_then(|()| out.flush()).is_err() {
                let lost = batch.iter().filter(|&&b| b == b'\n').count() as u64;
                metrics::counter!(DROPPED_LINES_METRIC).increment(lost);
            }
            batch.clear();
            if dropped > 0 {
                // Through the log itself, so it has the log's format.
                tracing::warn!(
                    dropped,
                    "log lines dropped: stderr did not keep up (counted in {DROPPED_LINES_METRIC})"
                );
            }
            if closed {
                return;
            }
            // A burst's buffer is not kept for ever.
            batch.shrink_to(64 * 1024);
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One event's access to the buffer.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.shared.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { shared: &self.shared }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that keeps what it is given, or fails every write.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>, bool);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.1 {
                return Err(io::Error::other("closed"));
            }
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let capture = Capture::default();
        let (writer, guard) = BatchedWriter::new(capture.clone());
        for i in 0..1000 {
            writer
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn lines_are_written_without_a_shutdown_within_the_interval() {
        let capture = Capture::default();
        let (writer, _guard) = BatchedWriter::new(capture.clone());
        writer.make_writer().write_all(b"soon\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while capture.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "not written within 10 s");
            std::thread::sleep(FLUSH_INTERVAL);
        }
        assert_eq!(&capture.0.lock().unwrap()[..], b"soon\n");
    }

    #[test]
    fn a_full_buffer_drops_whole_lines_and_counts_them() {
        // No writing thread: nothing leaves the buffer.
        let shared = Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        };
        let line = [b'x'; 1023].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        let fits = MAX_PENDING_BYTES / line.len();
        for _ in 0..fits + 3 {
            shared.append(&line);
        }
        let state = shared.lock();
        assert_eq!(
            state.pending.len(),
            fits * line.len(),
            "only whole lines are kept"
        );
        assert_eq!(state.dropped, 3);
    }

    #[test]
    fn a_failing_stderr_does_not_stop_the_server() {
        let (writer, guard) = BatchedWriter::new(Capture(Arc::default(), true));
        writer.make_writer().write_all(b"lost\n").unwrap();
        drop(guard);
    }
}
