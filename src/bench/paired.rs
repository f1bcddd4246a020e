//! Paired rounds: baseline and candidate alternate, and each round gives one ratio, so
//! the machine's drift falls on both sides of every ratio alike.

use std::fmt;
use std::time::{Duration, Instant};

/// What a paired measurement found: the median of the per-round ratios (candidate time
/// over baseline time), what the candidate adds per call and per message, and how far
/// the rounds spread.
///
/// ```
/// use grpc_chaos::bench::Paired;
/// use std::time::Duration;
///
/// // Three rounds of 100 calls: the candidate took 10%, 12% and 8% longer.
/// let rounds = [(100, 110), (100, 112), (100, 108)]
///     .map(|(b, c)| (Duration::from_micros(b), Duration::from_micros(c)));
/// let paired = Paired::from_rounds(&rounds, 100, 1);
/// assert!((paired.ratio() - 1.10).abs() < 1e-9);
/// assert!((paired.extra_ns_per_call() - 100.0).abs() < 1e-6);
/// assert!(paired.at_most(1.15) && !paired.at_most(1.05));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    ratio: f64,
    low: f64,
    high: f64,
    extra_ns_per_call: f64,
    baseline_ns_per_call: f64,
    messages_per_call: usize,
    rounds: usize,
    calls: usize,
}

impl Paired {
    /// Reads rounds of `(baseline time, candidate time)`, each of `calls` calls of
    /// `messages_per_call` messages.
    ///
    /// # Panics
    /// With no rounds, or no calls in a round.
    pub fn from_rounds(
        rounds: &[(Duration, Duration)],
        calls: usize,
        messages_per_call: usize,
    ) -> Self {
        assert!(
            !rounds.is_empty() && calls > 0,
            "a paired measurement needs rounds of calls"
        );
        let per_call = |d: Duration| d.as_nanos() as f64 / calls as f64;
        let mut ratios: Vec<f64> = rounds
            .iter()
            .map(|(base, cand)| per_call(*cand) / per_call(*base))
            .collect();
        let mut extra: Vec<f64> = rounds
            .iter()
            .map(|(base, cand)| per_call(*cand) - per_call(*base))
            .collect();
        let mut base: Vec<f64> = rounds.iter().map(|(base, _)| per_call(*base)).collect();
        ratios.sort_by(f64::total_cmp);
        extra.sort_by(f64::total_cmp);
        base.sort_by(f64::total_cmp);
        Self {
            ratio: median(&ratios),
            low: quantile(&ratios, 0.25),
            high: quantile(&ratios, 0.75),
            extra_ns_per_call: median(&extra),
            baseline_ns_per_call: median(&base),
            messages_per_call: messages_per_call.max(1),
            rounds: rounds.len(),
            calls,
        }
    }

    /// The median per-round ratio of the candidate's time to the baseline's: 1.03 is 3%
    /// slower.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The middle half of the rounds' ratios, first to third quartile: the spread.
    pub fn spread(&self) -> (f64, f64) {
        (self.low, self.high)
    }

    /// The median per-round difference per call, in nanoseconds.
    pub fn extra_ns_per_call(&self) -> f64 {
        self.extra_ns_per_call
    }

    /// [`Paired::extra_ns_per_call`] divided by the messages of a call: for streams, what
    /// the candidate adds to each message.
    pub fn extra_ns_per_message(&self) -> f64 {
        self.extra_ns_per_call / self.messages_per_call as f64
    }

    /// The baseline's median time per call, in nanoseconds.
    pub fn baseline_ns_per_call(&self) -> f64 {
        self.baseline_ns_per_call
    }

    /// Whether the median ratio is at most `limit`: a CI budget that is tolerant of noise
    /// because the median of paired rounds is, never a bare wall-clock threshold.
    pub fn at_most(&self, limit: f64) -> bool {
        self.ratio <= limit
    }

    /// Panics, with this measurement in the message, when the median ratio is over
    /// `limit`: for a `cargo bench` run that must fail past a budget.
    ///
    /// # Panics
    /// When [`Paired::at_most`] is false.
    #[track_caller]
    pub fn assert_at_most(&self, limit: f64) {
        assert!(
            self.at_most(limit),
            "over the budget of {limit:.3}x: {self}"
        );
    }
}

impl fmt::Display for Paired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.3}x the baseline ({:+.0} ns per call",
            self.ratio, self.extra_ns_per_call
        )?;
        if self.messages_per_call > 1 {
            write!(f, ", {:+.1} ns per message", self.extra_ns_per_message())?;
        }
        write!(
            f,
            "; baseline {:.0} ns); middle half {:.3}-{:.3}; median of {} alternating rounds of {} calls",
            self.baseline_ns_per_call, self.low, self.high, self.rounds, self.calls
        )
    }
}

fn median(sorted: &[f64]) -> f64 {
    quantile(sorted, 0.5)
}

/// The `q` quantile of sorted values, interpolated between neighbours.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (below, above) = (at.floor() as usize, at.ceil() as usize);
    let weight = at - below as f64;
    sorted[below] * (1.0 - weight) + sorted[above] * weight
}

/// A paired measurement of any two pieces of work, for what a [`Bench`](super::Bench)
/// rig does not cover (two servers, two configurations of one): `rounds` alternating
/// rounds of `calls` calls of each, each call moving `messages_per_call` messages.
///
/// ```
/// let mut a = 0u64;
/// let mut b = 0u64;
/// let paired = grpc_chaos::bench::pair(5, 100, 1, || a += 1, || b += 2);
/// assert_eq!((a, b), (500, 500 * 2));
/// assert!(paired.ratio() > 0.0);
/// ```
pub fn pair(
    rounds: usize,
    calls: usize,
    messages_per_call: usize,
    mut baseline: impl FnMut(),
    mut candidate: impl FnMut(),
) -> Paired {
    let timed = measure(rounds.max(1), calls.max(1), &mut baseline, &mut candidate);
    Paired::from_rounds(&timed, calls.max(1), messages_per_call)
}

/// Times `rounds` alternating rounds of `calls` calls each. The order flips every
/// round (baseline first, then candidate first), so neither side always runs warm.
pub(super) fn measure(
    rounds: usize,
    calls: usize,
    baseline: &mut dyn FnMut(),
    candidate: &mut dyn FnMut(),
) -> Vec<(Duration, Duration)> {
    let time = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..calls {
            f();
        }
        started.elapsed()
    };
    (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let b = time(baseline);
                (b, time(candidate))
            } else {
                let c = time(candidate);
                (time(baseline), c)
            }
        })
        .collect()
}
