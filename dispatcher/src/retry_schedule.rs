//! When to try a failed delivery again: exponential caps with full jitter.
use rand::Rng;
use std::str::FromStr;
use std::time::Duration;

/// A schedule that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    /// A step is not a number followed by ms, s, m, h or d.
    #[error("retry schedule step {0:?} is not like 500ms, 5s, 5m, 2h or 1d")]
    Step(String),
    /// The schedule has more than 50 steps.
    #[error("retry schedule has more than 50 steps")]
    TooLong,
}

/// The delays between attempts of one delivery.
///
/// Step `n` is the cap of the wait after the `n+1`-th failed attempt; the
/// actual wait is drawn uniformly from `(0, cap]` ("full jitter"), so
/// endpoints that fail together are not retried together. A schedule of
/// `k` steps makes at most `k + 1` attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    caps: Vec<Duration>,
}

/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about a day of retries, as Svix does.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";

impl Default for RetrySchedule {
    /// [`DEFAULT_RETRY_SCHEDULE`].
    fn default() -> Self {
        DEFAULT_RETRY_SCHEDULE.parse().expect("default schedule parses")
    }
}

impl RetrySchedule {
    /// A schedule with these caps.
    pub fn new(caps: Vec<Duration>) -> Self {
        Self { caps }
    }

    /// The most attempts a delivery gets in one retry cycle.
    pub fn max_attempts(&self) -> usize {
        self.caps.len() + 1
    }

    /// How long to wait after `failures` failed attempts in this retry cycle, or
    /// `None` when the cycle is over and the delivery has failed.
    pub fn delay_after(&self, failures: usize, rng: &mut impl Rng) -> Option<Duration> {
        let cap = *self.caps.get(failures.checked_sub(1)?)?;
        let cap_ms = cap.as_millis().max(1) as u64;
        Some(Duration::from_millis(rng.gen_range(1..=cap_ms)))
    }

    /// The caps, for display.
    pub fn caps(&self) -> &[Duration] {
        &self.caps
    }
}

fn parse_step(step: &str) -> Result<Duration, ScheduleError> {
    let err = || ScheduleError::Step(step.to_owned());
    let split = step.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = step.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    n.checked_mul(ms).map(Duration::from_millis).ok_or_else(err)
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    /// Parses a comma-separated list such as `5s,5m,30m`; empty means "no retries".
    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let caps =
            s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(parse_step).collect::<Result<Vec<_>, _>>()?;
        if caps.len() > 50 {
            return Err(ScheduleError::TooLong);
        }
        Ok(Self { caps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn default_is_the_documented_schedule() {
        let s = RetrySchedule::default();
        let secs: Vec<u64> = s.caps().iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(s.max_attempts(), 8);
    }

    #[test]
    fn delays_are_jittered_within_their_cap() {
        let s: RetrySchedule = "100ms,1s".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = s.delay_after(1, &mut rng).unwrap();
            assert!(d > Duration::ZERO && d <= Duration::from_millis(100));
            seen.insert(d);
            let d = s.delay_after(2, &mut rng).unwrap();
            assert!(d > Duration::ZERO && d <= Duration::from_secs(1));
        }
        assert!(seen.len() > 20, "jitter spreads retries");
        assert_eq!(s.delay_after(3, &mut rng), None);
        assert_eq!(s.delay_after(0, &mut rng), None);
    }

    #[test]
    fn parse_errors_name_the_step() {
        assert_eq!("5s,5x".parse::<RetrySchedule>(), Err(ScheduleError::Step("5x".into())));
        assert_eq!("".parse::<RetrySchedule>().unwrap().max_attempts(), 1);
    }
}
