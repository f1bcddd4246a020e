//! The strict `grpc-timeout` codec (PROTOCOL-HTTP2.md: `TimeoutValue TimeoutUnit`).

use std::fmt;
use std::time::Duration;

/// The most digits a `grpc-timeout` value may have.
const MAX_DIGITS: usize = 8;
/// The largest value that fits in [`MAX_DIGITS`] digits.
const MAX_VALUE: u64 = 99_999_999;

/// A `grpc-timeout` unit, from coarsest to finest.
///
/// ```
/// use tonic_layers::deadline::TimeoutUnit;
/// assert_eq!(TimeoutUnit::from_char('m'), Some(TimeoutUnit::Milliseconds));
/// assert_eq!(TimeoutUnit::Milliseconds.as_char(), 'm');
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutUnit {
    /// `H`
    Hours,
    /// `M`
    Minutes,
    /// `S`
    Seconds,
    /// `m`
    Milliseconds,
    /// `u`
    Microseconds,
    /// `n`
    Nanoseconds,
}

impl TimeoutUnit {
    /// Every unit, finest first: the order [`format_grpc_timeout`] tries them in.
    ///
    /// ```
    /// use tonic_layers::deadline::TimeoutUnit;
    /// assert_eq!(TimeoutUnit::FINEST_FIRST[0], TimeoutUnit::Nanoseconds);
    /// ```
    pub const FINEST_FIRST: [TimeoutUnit; 6] = [
        TimeoutUnit::Nanoseconds,
        TimeoutUnit::Microseconds,
        TimeoutUnit::Milliseconds,
        TimeoutUnit::Seconds,
        TimeoutUnit::Minutes,
        TimeoutUnit::Hours,
    ];

    /// The unit a character stands for, if any (case matters: `m` is ms, `M` minutes).
    ///
    /// ```
    /// use tonic_layers::deadline::TimeoutUnit;
    /// assert_eq!(TimeoutUnit::from_char('s'), None);
    /// ```
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            'H' => Self::Hours,
            'M' => Self::Minutes,
            'S' => Self::Seconds,
            'm' => Self::Milliseconds,
            'u' => Self::Microseconds,
            'n' => Self::Nanoseconds,
            _ => return None,
        })
    }

    /// The character the wire uses for this unit.
    ///
    /// ```
    /// use tonic_layers::deadline::TimeoutUnit;
    /// assert_eq!(TimeoutUnit::Hours.as_char(), 'H');
    /// ```
    pub fn as_char(self) -> char {
        match self {
            Self::Hours => 'H',
            Self::Minutes => 'M',
            Self::Seconds => 'S',
            Self::Milliseconds => 'm',
            Self::Microseconds => 'u',
            Self::Nanoseconds => 'n',
        }
    }

    /// How many nanoseconds one of this unit lasts.
    ///
    /// ```
    /// use tonic_layers::deadline::TimeoutUnit;
    /// assert_eq!(TimeoutUnit::Microseconds.nanos(), 1_000);
    /// ```
    pub fn nanos(self) -> u128 {
        match self {
            Self::Hours => 3_600_000_000_000,
            Self::Minutes => 60_000_000_000,
            Self::Seconds => 1_000_000_000,
            Self::Milliseconds => 1_000_000,
            Self::Microseconds => 1_000,
            Self::Nanoseconds => 1,
        }
    }

    /// `amount` of this unit, for an amount the grammar allows (at most 8 digits).
    fn times(self, amount: u64) -> Duration {
        match self {
            Self::Hours => Duration::from_secs(amount * 3600),
            Self::Minutes => Duration::from_secs(amount * 60),
            Self::Seconds => Duration::from_secs(amount),
            Self::Milliseconds => Duration::from_millis(amount),
            Self::Microseconds => Duration::from_micros(amount),
            Self::Nanoseconds => Duration::from_nanos(amount),
        }
    }
}

/// What is wrong with a `grpc-timeout` value.
///
/// ```
/// use tonic_layers::deadline::{parse_grpc_timeout, GrpcTimeoutError};
/// assert_eq!(parse_grpc_timeout("123456789S"), Err(GrpcTimeoutError::TooManyDigits { digits: 9 }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcTimeoutError {
    /// The value is empty.
    Empty,
    /// The value holds bytes that are not ASCII (it cannot be read as text).
    NotAscii,
    /// No digits come before the unit (for example `S`).
    NoDigits,
    /// More than 8 digits.
    TooManyDigits {
        /// How many digits the value has.
        digits: usize,
    },
    /// A character that is neither a digit nor, at the end, a unit (`+`, a space, `.` …).
    UnexpectedChar {
        /// The character.
        ch: char,
        /// Its byte offset in the value.
        index: usize,
    },
    /// The value ends in a digit: the unit is missing.
    MissingUnit,
    /// The last character is not one of `H M S m u n`.
    UnknownUnit {
        /// The character found where the unit belongs.
        ch: char,
    },
}

impl fmt::Display for GrpcTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "grpc-timeout is empty"),
            Self::NotAscii => write!(f, "grpc-timeout is not ASCII"),
            Self::NoDigits => write!(f, "grpc-timeout has no digits before its unit"),
            Self::TooManyDigits { digits } => {
                write!(
                    f,
                    "grpc-timeout has {digits} digits; at most {MAX_DIGITS} are allowed"
                )
            }
            Self::UnexpectedChar { ch, index } => {
                write!(f, "grpc-timeout has {ch:?} at byte {index}; only digits then one unit are allowed")
            }
            Self::MissingUnit => write!(f, "grpc-timeout has no unit; expected one of H M S m u n"),
            Self::UnknownUnit { ch } => {
                write!(f, "grpc-timeout unit {ch:?} is not one of H M S m u n")
            }
        }
    }
}

impl std::error::Error for GrpcTimeoutError {}

/// Parses a `grpc-timeout` value strictly: 1 to 8 ASCII digits, then one of `H M S m u n`.
///
/// Leading zeros are allowed (the grammar allows them); signs, spaces, decimals,
/// a ninth digit, and a lowercase `s` are not. A value of zero (`0S`) is accepted and
/// means the deadline has already passed: the grammar asks for a positive value, but a
/// sender that rounds down may produce 0, and refusing the call outright would turn an
/// expired deadline into a protocol error.
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::deadline::parse_grpc_timeout;
/// assert_eq!(parse_grpc_timeout("2S"), Ok(Duration::from_secs(2)));
/// assert_eq!(parse_grpc_timeout("00000005n"), Ok(Duration::from_nanos(5)));
/// assert!(parse_grpc_timeout("1 S").is_err());
/// ```
pub fn parse_grpc_timeout(value: &str) -> Result<Duration, GrpcTimeoutError> {
    parse_grpc_timeout_bytes(value.as_bytes())
}

/// [`parse_grpc_timeout`] on the raw header bytes, which need not be UTF-8.
///
/// ```
/// use tonic_layers::deadline::{parse_grpc_timeout_bytes, GrpcTimeoutError};
/// assert_eq!(parse_grpc_timeout_bytes(b"1\xff"), Err(GrpcTimeoutError::NotAscii));
/// ```
pub fn parse_grpc_timeout_bytes(value: &[u8]) -> Result<Duration, GrpcTimeoutError> {
    let (&last, digits) = value.split_last().ok_or(GrpcTimeoutError::Empty)?;
    if !value.is_ascii() {
        return Err(GrpcTimeoutError::NotAscii);
    }
    if let Some(index) = digits.iter().position(|b| !b.is_ascii_digit()) {
        // A unit too early ("1S ") is fine itself: what follows it is the mistake.
        let index = if TimeoutUnit::from_char(digits[index] as char).is_some() {
            index + 1
        } else {
            index
        };
        return Err(GrpcTimeoutError::UnexpectedChar {
            ch: value[index] as char,
            index,
        });
    }
    let unit = match TimeoutUnit::from_char(last as char) {
        Some(unit) => unit,
        None if last.is_ascii_digit() => return Err(GrpcTimeoutError::MissingUnit),
        None if last.is_ascii_alphabetic() => {
            return Err(GrpcTimeoutError::UnknownUnit { ch: last as char })
        }
        None => {
            return Err(GrpcTimeoutError::UnexpectedChar {
                ch: last as char,
                index: digits.len(),
            })
        }
    };
    if digits.is_empty() {
        return Err(GrpcTimeoutError::NoDigits);
    }
    if digits.len() > MAX_DIGITS {
        return Err(GrpcTimeoutError::TooManyDigits {
            digits: digits.len(),
        });
    }
    // At most 8 digits, so every unit's product fits in a u64: no 128-bit division.
    let amount = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    Ok(unit.times(amount))
}

/// Formats a timeout in the finest unit whose value fits in 8 digits.
///
/// Rounding is **down** (truncation), so a peer never sees a later deadline than the
/// sender had: the value sent is at most one unit shorter. Anything that would round
/// to zero is sent as `1n`, the shortest timeout the grammar can say ("positive").
/// Durations over 99,999,999 hours are clamped to `99999999H`.
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::deadline::format_grpc_timeout;
/// assert_eq!(format_grpc_timeout(Duration::from_millis(50)), "50000000n");
/// assert_eq!(format_grpc_timeout(Duration::from_millis(500)), "500000u");
/// assert_eq!(format_grpc_timeout(Duration::from_nanos(1_234_567_891)), "1234567u");
/// assert_eq!(format_grpc_timeout(Duration::ZERO), "1n");
/// ```
pub fn format_grpc_timeout(timeout: Duration) -> String {
    let nanos = timeout.as_nanos();
    for unit in TimeoutUnit::FINEST_FIRST {
        let amount = nanos / unit.nanos();
        if amount <= u128::from(MAX_VALUE) {
            return format!("{}{}", amount.max(1), unit.as_char());
        }
    }
    format!("{MAX_VALUE}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_times_any_allowed_amount_is_that_many_nanoseconds() {
        let units = [
            TimeoutUnit::Hours,
            TimeoutUnit::Minutes,
            TimeoutUnit::Seconds,
            TimeoutUnit::Milliseconds,
            TimeoutUnit::Microseconds,
            TimeoutUnit::Nanoseconds,
        ];
        for unit in units {
            for amount in [0, 1, 7, 1_000_000_007, MAX_VALUE] {
                let nanos = u128::from(amount) * unit.nanos();
                let expected = Duration::new(
                    (nanos / 1_000_000_000) as u64,
                    (nanos % 1_000_000_000) as u32,
                );
                assert_eq!(unit.times(amount), expected, "{amount} {}", unit.as_char());
            }
        }
    }

    #[test]
    fn names_each_class_of_mistake() {
        assert_eq!(parse_grpc_timeout(""), Err(GrpcTimeoutError::Empty));
        assert_eq!(parse_grpc_timeout("S"), Err(GrpcTimeoutError::NoDigits));
        assert_eq!(parse_grpc_timeout("10"), Err(GrpcTimeoutError::MissingUnit));
        assert_eq!(
            parse_grpc_timeout("1X"),
            Err(GrpcTimeoutError::UnknownUnit { ch: 'X' })
        );
        assert_eq!(
            parse_grpc_timeout("1s"),
            Err(GrpcTimeoutError::UnknownUnit { ch: 's' })
        );
        assert_eq!(
            parse_grpc_timeout("+1S"),
            Err(GrpcTimeoutError::UnexpectedChar { ch: '+', index: 0 })
        );
        assert_eq!(parse_grpc_timeout("1é"), Err(GrpcTimeoutError::NotAscii));
        assert_eq!(
            parse_grpc_timeout("1S "),
            Err(GrpcTimeoutError::UnexpectedChar { ch: ' ', index: 2 })
        );
    }

    #[test]
    fn reads_the_largest_value_of_every_unit() {
        assert_eq!(
            parse_grpc_timeout("99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Ok(Duration::from_nanos(99_999_999))
        );
    }
}
