//! The `#[grpc_chaos::test]` attribute. Use it through the harness crate, which
//! re-exports it as `grpc_chaos::test`; the code it expands to calls
//! `grpc_chaos::testing::TestRun`, where the behaviour is documented.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::{ItemFn, LitBool, LitInt, LitStr};

/// Turns an `async fn` into a test that runs on a current-thread tokio runtime with
/// paused time, bounded by a virtual-time limit and a wall-clock watchdog, both named
/// after the test. See `grpc_chaos::testing` for what each limit does and the options:
///
/// - `virtual_limit = "10m"`: the body's bound on the tokio clock (the default is ten
///   minutes);
/// - `wall_limit = "30s"`: the watchdog's bound in real time (the default is 30 s);
/// - `paused = false`: run on the real clock, for tests that use real sockets and
///   processes;
/// - `worker_threads = N`: a multi-thread runtime with N workers (real clock only).
///
/// Durations are a whole number followed by `ms`, `s`, `m` or `h`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// The options written in the attribute, as the code that sets them on a `TestRun`.
#[derive(Default)]
struct Options {
    setters: Vec<proc_macro2::TokenStream>,
    paused: Option<bool>,
    worker_threads: Option<(usize, Span)>,
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let options = parse_options(args)?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = function;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            "#[grpc_chaos::test] needs an `async fn`",
        ));
    }
    if let Some(input) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(
            input,
            "#[grpc_chaos::test] functions take no arguments; with rstest, write #[rstest] \
             above #[grpc_chaos::test]",
        ));
    }
    if let (Some(true), Some((_, span))) = (options.paused, options.worker_threads) {
        return Err(syn::Error::new(
            span,
            "paused time needs a current-thread runtime: add `paused = false`",
        ));
    }
    let name = &sig.ident;
    let output = &sig.output;
    let setters = &options.setters;
    let paused = match (options.paused, options.worker_threads) {
        (Some(paused), _) => paused,
        (None, Some(_)) => false,
        (None, None) => true,
    };
    let threads = options
        .worker_threads
        .map(|(n, _)| quote!(.worker_threads(#n)));
    let run = quote_spanned! {name.span()=>
        ::grpc_chaos::testing::TestRun::new(::grpc_chaos::testing::test_name(
            ::core::module_path!(),
            ::core::stringify!(#name),
        ))
        .paused(#paused)
        #threads
        #(#setters)*
        .run(move || async move #block)
    };
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() #output {
            #run
        }
    })
}

fn parse_options(args: proc_macro2::TokenStream) -> syn::Result<Options> {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "virtual_limit" | "wall_limit" => {
                let literal: LitStr = meta.value()?.parse()?;
                let millis = parse_millis(&literal.value())
                    .ok_or_else(|| syn::Error::new_spanned(&literal, DURATION_HELP))?;
                let setter = syn::Ident::new(&key, literal.span());
                options.setters.push(quote! {
                    .#setter(::core::time::Duration::from_millis(#millis))
                });
                Ok(())
            }
            "paused" => {
                let literal: LitBool = meta.value()?.parse()?;
                options.paused = Some(literal.value);
                Ok(())
            }
            "worker_threads" => {
                let literal: LitInt = meta.value()?.parse()?;
                let n: usize = literal.base10_parse()?;
                if n == 0 {
                    return Err(syn::Error::new_spanned(literal, "at least one worker"));
                }
                options.worker_threads = Some((n, literal.span()));
                Ok(())
            }
            _ => Err(meta.error(
                "unknown option; #[grpc_chaos::test] takes virtual_limit, wall_limit, \
                 paused and worker_threads",
            )),
        }
    });
    parser.parse2(args)?;
    Ok(options)
}

const DURATION_HELP: &str =
    "a duration is a whole number followed by ms, s, m or h, like \"500ms\" or \"10m\"";

/// `"500ms"`, `"30s"`, `"10m"`, `"2h"` as milliseconds.
fn parse_millis(text: &str) -> Option<u64> {
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn durations_take_the_four_units_and_nothing_else() {
        assert_eq!(parse_millis("500ms"), Some(500));
        assert_eq!(parse_millis("30s"), Some(30_000));
        assert_eq!(parse_millis("10m"), Some(600_000));
        assert_eq!(parse_millis("2h"), Some(7_200_000));
        for bad in ["", "s", "10", "1.5s", "10 s", "-1s", "3d"] {
            assert_eq!(parse_millis(bad), None, "{bad:?}");
        }
    }
}
