//! Property tests of the strict `grpc-timeout` codec.

use std::time::Duration;

use grpc_chaos::deadline::{
    format_grpc_timeout, parse_grpc_timeout, GrpcTimeoutError, TimeoutUnit,
};
use proptest::prelude::*;

const UNITS: [char; 6] = ['H', 'M', 'S', 'm', 'u', 'n'];

fn unit_of(s: &str) -> TimeoutUnit {
    TimeoutUnit::from_char(s.chars().last().unwrap()).unwrap()
}

/// Every string the spec's grammar accepts: 1 to 8 ASCII digits, then a unit.
fn valid_timeout() -> impl Strategy<Value = String> {
    ("[0-9]{1,8}", prop::sample::select(UNITS.to_vec()))
        .prop_map(|(digits, unit)| format!("{digits}{unit}"))
}

/// Near-misses of the grammar: one thing wrong each.
fn near_miss() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(UNITS.to_vec());
    prop_oneof![
        ("[0-9]{1,8}", unit.clone()).prop_map(|(d, u)| format!("+{d}{u}")),
        ("[0-9]{1,8}", unit.clone()).prop_map(|(d, u)| format!("-{d}{u}")),
        ("[0-9]{1,8}", unit.clone()).prop_map(|(d, u)| format!(" {d}{u}")),
        ("[0-9]{1,8}", unit.clone()).prop_map(|(d, u)| format!("{d}{u} ")),
        ("[0-9]{1,8}", unit.clone()).prop_map(|(d, u)| format!("{d} {u}")),
        ("[0-9]{9,12}", unit.clone()).prop_map(|(d, u)| format!("{d}{u}")),
        "[0-9]{1,8}".prop_map(|d| format!("{d}s")),
        "[0-9]{1,8}".prop_map(|d| format!("{d}X")),
        "[0-9]{1,8}".prop_map(|d| d.to_string()),
        "[0-9]{1,4}".prop_map(|d| format!("{d}.5S")),
        unit.prop_map(|u| u.to_string()),
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_string_the_grammar_accepts_parses(s in valid_timeout()) {
        let parsed = parse_grpc_timeout(&s).unwrap();
        let digits: u128 = s[..s.len() - 1].parse().unwrap();
        prop_assert_eq!(parsed.as_nanos(), digits * unit_of(&s).nanos());
    }

    #[test]
    fn near_misses_are_rejected(s in near_miss()) {
        prop_assert!(parse_grpc_timeout(&s).is_err(), "{s:?} was accepted");
    }

    #[test]
    fn any_string_gives_a_value_or_an_error_never_a_panic(s in any::<String>()) {
        let _ = parse_grpc_timeout(&s);
    }

    #[test]
    fn format_rounds_down_by_less_than_one_unit_of_its_resolution(nanos in 1u64..u64::MAX) {
        let d = Duration::from_nanos(nanos);
        let text = format_grpc_timeout(d);
        prop_assert!(text.len() <= 9, "{text}");
        let parsed = parse_grpc_timeout(&text).unwrap();
        let unit = unit_of(&text).nanos();
        prop_assert!(parsed <= d, "{text} is later than {d:?}");
        prop_assert!(d.as_nanos() - parsed.as_nanos() < unit, "{text} is a unit or more short of {d:?}");
        // The finest unit that fits: one step finer would need a ninth digit.
        if let Some(finer) = TimeoutUnit::FINEST_FIRST.iter().rev().find(|u| u.nanos() < unit) {
            prop_assert!(d.as_nanos() / finer.nanos() > 99_999_999, "{text} could use {finer:?}");
        }
    }
}

#[test]
fn zero_and_huge_durations_have_defined_forms() {
    assert_eq!(format_grpc_timeout(Duration::ZERO), "1n");
    assert_eq!(format_grpc_timeout(Duration::MAX), "99999999H");
    assert_eq!(parse_grpc_timeout("0S"), Ok(Duration::ZERO));
    assert_eq!(
        parse_grpc_timeout("123456789S"),
        Err(GrpcTimeoutError::TooManyDigits { digits: 9 })
    );
}
