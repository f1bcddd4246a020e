//! JSON scenario files: the same schema as TOML, read by the same code.
//!
//! A JSON object is a TOML 1.1 inline table but for its punctuation, so the text is
//! rewritten byte for byte: `:` becomes `=`, the outer braces become spaces, and a comma
//! between top-level keys becomes a line break. Every byte stays where it was, so every
//! position the TOML reader reports (the key at fault, the value at fault) is the same
//! line and column in the JSON file. The JSON itself is checked first by serde_json, so
//! a syntax error is described in JSON's terms.

use std::ops::Range;

/// What is wrong with a JSON scenario, and where (a byte offset).
pub(super) struct JsonError {
    pub(super) at: Option<Range<usize>>,
    pub(super) message: String,
}

/// The TOML text with the same bytes in the same places.
pub(super) fn to_toml(text: &str) -> Result<String, JsonError> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(JsonError {
            at: Some(offset(text, e.line(), e.column())..offset(text, e.line(), e.column())),
            message: format!("expected JSON: {e}"),
        });
    }
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match (escaped, b) {
                (true, b'/') => {
                    return Err(JsonError {
                        at: Some(i - 1..i + 1),
                        message: "write `/` unescaped: `\\/` is not read here".into(),
                    });
                }
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth == 0 && b == b'[' {
                    return Err(JsonError {
                        at: Some(i..i + 1),
                        message: "expected a JSON object with a `stub` list, found an array".into(),
                    });
                }
                if depth == 0 {
                    out[i] = b' ';
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    out[i] = b' ';
                }
            }
            b':' => out[i] = b'=',
            b',' if depth == 1 => out[i] = b'\n',
            b'n' if bytes[i..].starts_with(b"null") => {
                return Err(JsonError {
                    at: Some(i..i + 4),
                    message: "null is not a scenario value: leave the key out".into(),
                });
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 || !text.trim_start().starts_with('{') {
        return Err(JsonError {
            at: None,
            message: "expected a JSON object with a `stub` list".into(),
        });
    }
    // Only ASCII punctuation outside strings was replaced by ASCII: still UTF-8.
    String::from_utf8(out).map_err(|_| JsonError {
        at: None,
        message: "not UTF-8".into(),
    })
}

/// The byte offset of serde_json's 1-based line and column.
fn offset(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::to_toml;

    #[test]
    fn keeps_every_byte_in_place() {
        let json =
            "{\"stub\": [{\"method\": \"/a.B/C\",\n \"reply\": {\"delay_ms\": 5}}],\n \"x\": 1}";
        let toml = to_toml(json).ok().unwrap();
        assert_eq!(toml.len(), json.len());
        assert_eq!(
            toml,
            " \"stub\"= [{\"method\"= \"/a.B/C\",\n \"reply\"= {\"delay_ms\"= 5}}]\n\n \"x\"= 1 "
        );
    }

    #[test]
    fn colons_and_commas_inside_strings_stay() {
        let toml = to_toml(r#"{"k": "a:b,c\"{"}"#).ok().unwrap();
        assert_eq!(toml, r#" "k"= "a:b,c\"{" "#);
    }

    #[test]
    fn null_and_syntax_errors_say_where() {
        let err = to_toml("{\"a\": null}").err().unwrap();
        assert_eq!(err.at, Some(6..10));
        let err = to_toml("{\n\"a\" 1}").err().unwrap();
        assert!(err.message.starts_with("expected JSON"), "{}", err.message);
        assert_eq!(err.at.map(|r| r.start), Some(6));
    }
}
