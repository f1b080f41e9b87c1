//! The sandbox's hard limits, and the clock that enforces the CPU one.
//!
//! QuickJS calls an interrupt handler every few thousand bytecodes; the
//! [`Deadline`] is that handler. It reads the thread's CPU clock rather than
//! the wall clock, so that a run descheduled on a busy host is not failed for
//! time it did not use, with a wall-clock backstop (a multiple of the CPU
//! limit) so that a run cannot hold a pool thread indefinitely either.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one run of a subscription's filter and transform may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time of one run (filter, transform and serialising the result).
    pub cpu_time: Duration,
    /// Wall-clock time of one run: the backstop when the thread is starved.
    pub wall_time: Duration,
    /// Bytes the JavaScript heap may hold.
    pub memory_bytes: usize,
    /// Bytes of native stack the interpreter may use (bounds recursion).
    pub stack_bytes: usize,
    /// Bytes of the body a transform may produce.
    pub output_bytes: usize,
    /// Extra headers a transform may set.
    pub max_headers: usize,
    /// Bytes of a filter's or a transform's source.
    pub source_bytes: usize,
}

impl Default for Limits {
    /// 10 ms of CPU, 16 MiB of heap, 512 KiB of stack, a 256 KiB body.
    ///
    /// A typical transform (pick fields, rename them) takes well under a
    /// millisecond; 10 ms leaves room for real work while bounding what a
    /// hostile one costs each delivery. 256 KiB is the ingest body limit's
    /// order of magnitude: a transform reshapes events, it does not inflate them.
    fn default() -> Self {
        Self {
            cpu_time: Duration::from_millis(10),
            wall_time: Duration::from_secs(1),
            memory_bytes: 16 * 1024 * 1024,
            stack_bytes: 512 * 1024,
            output_bytes: 256 * 1024,
            max_headers: 32,
            source_bytes: 64 * 1024,
        }
    }
}

/// The CPU time this thread has used so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec, and CLOCK_THREAD_CPUTIME_ID
    // is supported on every Linux and macOS this builds for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The interrupt handler of one run: true (interrupt) once the run is over
/// its CPU or wall-clock budget. It remembers that it fired, so that the
/// uncatchable exception QuickJS raises can be reported as the time limit.
#[derive(Clone, Debug)]
pub(crate) struct Deadline {
    cpu_start: Duration,
    wall_start: Instant,
    limits: Limits,
    fired: Arc<AtomicBool>,
}

impl Deadline {
    /// Starts the clocks of a run on the calling thread.
    pub(crate) fn start(limits: Limits) -> Self {
        Self {
            cpu_start: thread_cpu_time(),
            wall_start: Instant::now(),
            limits,
            fired: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the run must stop now.
    pub(crate) fn expired(&self) -> bool {
        let over = thread_cpu_time().saturating_sub(self.cpu_start) > self.limits.cpu_time
            || self.wall_start.elapsed() > self.limits.wall_time;
        if over {
            self.fired.store(true, Ordering::Relaxed);
        }
        over
    }

    /// Whether it interrupted the run.
    pub(crate) fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_clock_counts_work_not_sleep() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        assert!(thread_cpu_time() - before < Duration::from_millis(20), "sleeping uses no CPU");
        let deadline = Deadline::start(Limits { cpu_time: Duration::from_millis(5), ..Limits::default() });
        assert!(!deadline.expired());
        while !deadline.expired() {
            std::hint::black_box((0..1000).sum::<u64>());
        }
        assert!(deadline.fired());
    }
}
