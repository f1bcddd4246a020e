//! How flags write durations (`10s`, `500ms`, `5m`, `1h`) and sizes (`65536`, `256KiB`,
//! `64MiB`, `1GiB`).

use std::time::Duration;

/// A duration flag: a whole number followed by `ms`, `s`, `m` or `h`.
///
/// # Errors
/// A message saying what is expected, for clap to show with the flag's name.
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos_cli::units::duration;
/// assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
/// assert_eq!(duration("1500ms"), Ok(Duration::from_millis(1500)));
/// assert!(duration("10").is_err());
/// ```
pub fn duration(text: &str) -> Result<Duration, String> {
    let expected = || format!("{text:?}: expected a whole number and ms, s, m or h (\"10s\")");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(expected)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let millis_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(expected()),
    };
    let millis = number.checked_mul(millis_per).ok_or_else(expected)?;
    if millis == 0 {
        return Err(format!("{text:?}: must be more than 0"));
    }
    Ok(Duration::from_millis(millis))
}

/// A size flag: a whole number of bytes, or one followed by `KiB`, `MiB` or `GiB`.
///
/// # Errors
/// A message saying what is expected.
///
/// ```
/// use grpc_chaos_cli::units::size;
/// assert_eq!(size("64MiB"), Ok(64 << 20));
/// assert_eq!(size("4096"), Ok(4096));
/// assert!(size("64MB").is_err());
/// ```
pub fn size(text: &str) -> Result<usize, String> {
    let expected = || format!("{text:?}: expected bytes, or a whole number and KiB, MiB or GiB");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if split == 0 {
        return Err(expected());
    }
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().map_err(|_| expected())?;
    let scale: usize = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(expected()),
    };
    number.checked_mul(scale).ok_or_else(expected)
}
