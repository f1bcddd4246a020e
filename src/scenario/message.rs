//! Messages written as tables: the protobuf JSON mapping (through [`prost_reflect`]'s
//! serde support) read from the scenario's own text, so that a mistake points at the
//! key or value at fault, and the two message matchers.
//!
//! A table is parsed again from its span of the file ([`DeValue::parse`] keeps
//! positions), its keys are checked against the message type, and it is then
//! deserialized as a dynamic message. TOML datetimes are read as their RFC 3339 text, so
//! `created = 2026-01-01T00:00:00Z` and `created = "2026-01-01T00:00:00Z"` are the same
//! Timestamp.

use std::borrow::Cow;
use std::ops::Range;

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value};
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

use crate::fake::{CallRequest, Match, NO_MESSAGE};
use crate::schema::edit_distance;

/// What is wrong with a table, and where in the file (a byte range).
pub(super) struct TableError {
    pub(super) span: Range<usize>,
    pub(super) message: String,
}

/// A table read as a message of `desc`: the message, and which fields it lists.
pub(super) struct Table {
    pub(super) message: DynamicMessage,
    pub(super) listed: Listed,
}

/// The fields a table lists, by number; a listed message field keeps its own list.
#[derive(Debug, Default)]
pub(super) struct Listed(Vec<(u32, Option<Listed>)>);

/// Reads the table at `span` of the parsed file `doc` as a message of `desc`.
pub(super) fn read(
    doc: &Spanned<DeValue<'_>>,
    span: Range<usize>,
    desc: &MessageDescriptor,
) -> Result<Table, TableError> {
    let Some(found) = find(doc, &span) else {
        return Err(TableError {
            span,
            message: format!("expected a table of {} fields", desc.full_name()),
        });
    };
    let mut value = found.clone();
    let listed = check(&value, desc).map_err(|(span, message)| TableError { span, message })?;
    datetimes_as_text(&mut value);
    let message = DynamicMessage::deserialize(desc.clone(), ValueDeserializer::from(value))
        .map_err(|e| TableError {
            span: e.span().unwrap_or(span),
            message: format!("expected a {} message: {}", desc.full_name(), e.message()),
        })?;
    Ok(Table { message, listed })
}

/// The value in `node`, or below it, that serde read at `span`. (A header table's span
/// is its header, which does not cover its body, so every branch is searched.)
fn find<'a, 'i>(
    node: &'a Spanned<DeValue<'i>>,
    span: &Range<usize>,
) -> Option<&'a Spanned<DeValue<'i>>> {
    if node.span() == *span {
        return Some(node);
    }
    match node.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(_, v)| find(v, span)),
        DeValue::Array(items) => items.iter().find_map(|v| find(v, span)),
        _ => None,
    }
}

/// Checks every key of a table (and of the tables within it) names a field of its
/// message type, and lists them.
fn check(
    value: &Spanned<DeValue<'_>>,
    desc: &MessageDescriptor,
) -> Result<Listed, (Range<usize>, String)> {
    let DeValue::Table(table) = value.get_ref() else {
        // A value that is not a table is for the deserializer to describe.
        return Ok(Listed::default());
    };
    let mut listed = Vec::new();
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let field = desc
            .get_field_by_name(name)
            .or_else(|| desc.get_field_by_json_name(name))
            .ok_or_else(|| (key.span(), unknown_field(desc, name)))?;
        let nested = match (field.kind(), value.get_ref()) {
            (Kind::Message(inner), _) if is_well_known(&inner) => None,
            (Kind::Message(inner), DeValue::Table(_)) if field.is_map() => {
                check_map(value, &inner)?;
                None
            }
            (Kind::Message(inner), DeValue::Table(_)) if !field.is_list() => {
                Some(check(value, &inner)?)
            }
            (Kind::Message(inner), DeValue::Array(items)) if field.is_list() => {
                for item in items.iter() {
                    check(item, &inner)?;
                }
                None
            }
            _ => None,
        };
        listed.push((field.number(), nested));
    }
    Ok(Listed(listed))
}

/// Checks the message values of a map field's table.
fn check_map(
    value: &Spanned<DeValue<'_>>,
    entry: &MessageDescriptor,
) -> Result<(), (Range<usize>, String)> {
    let values = entry.map_entry_value_field();
    if let (Kind::Message(inner), DeValue::Table(table)) = (values.kind(), value.get_ref())
        && !is_well_known(&inner)
    {
        for (_, item) in table.iter() {
            check(item, &inner)?;
        }
    }
    Ok(())
}

/// `google.protobuf.*` types have JSON forms of their own (a Timestamp is a string).
fn is_well_known(desc: &MessageDescriptor) -> bool {
    desc.full_name().starts_with("google.protobuf.")
}

/// "`shop.Item` has no field `nmae`; did you mean `name`?"
fn unknown_field(desc: &MessageDescriptor, name: &str) -> String {
    let nearest = desc
        .fields()
        .flat_map(|f| [f.name().to_string(), f.json_name().to_string()])
        .min_by_key(|candidate| edit_distance(candidate, name));
    match nearest {
        Some(nearest) => format!(
            "{} has no field `{name}`; did you mean `{nearest}`?",
            desc.full_name()
        ),
        None => format!("{} has no fields; `{name}` is not one", desc.full_name()),
    }
}

/// Replaces every TOML datetime with its RFC 3339 text, as the JSON mapping writes it.
fn datetimes_as_text(value: &mut Spanned<DeValue<'_>>) {
    match value.get_mut() {
        DeValue::Datetime(d) => {
            let text = d.to_string();
            *value.get_mut() = DeValue::String(Cow::Owned(text));
        }
        DeValue::Array(items) => items.iter_mut().for_each(datetimes_as_text),
        DeValue::Table(table) => table.iter_mut().for_each(|(_, v)| datetimes_as_text(v)),
        _ => {}
    }
}

/// Whether `received` holds every field `listed` names with the value `expected` gives
/// it; a listed message field is compared by its own listed fields.
fn holds(received: &DynamicMessage, expected: &DynamicMessage, listed: &Listed) -> bool {
    let desc = expected.descriptor();
    listed.0.iter().all(|(number, nested)| {
        let Some(field) = desc.get_field(*number) else {
            return false;
        };
        match nested {
            Some(inner) => match (
                received.get_field(&field).as_ref(),
                expected.get_field(&field).as_ref(),
            ) {
                (Value::Message(r), Value::Message(e)) => holds(r, e, inner),
                _ => false,
            },
            None => received.get_field(&field) == expected.get_field(&field),
        }
    })
}

/// A message in the protobuf JSON mapping, as failure messages show it.
fn json(message: &DynamicMessage) -> String {
    serde_json::to_string(message).unwrap_or_else(|e| format!("<{e}>"))
}

/// How a first request message is compared with the one a scenario gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compare {
    /// `message = {…}`: equal field by field (unset and default are the same).
    Equals,
    /// `message_contains = {…}`: the listed fields hold the given values, whatever the
    /// others are.
    Contains,
}

/// Matches a call whose first request message decodes as the expected type and equals
/// (or contains) the expected message.
pub(super) struct FirstMessageTable {
    pub(super) table: Table,
    pub(super) compare: Compare,
}

impl FirstMessageTable {
    fn decode(&self, bytes: &[u8]) -> Option<DynamicMessage> {
        DynamicMessage::decode(self.table.message.descriptor(), bytes).ok()
    }
}

impl Match for FirstMessageTable {
    fn matches(&self, request: &CallRequest) -> bool {
        let Some(received) = request.first_message.as_ref().and_then(|m| self.decode(m)) else {
            return false;
        };
        match self.compare {
            Compare::Equals => received == self.table.message,
            Compare::Contains => holds(&received, &self.table.message, &self.table.listed),
        }
    }
    fn describe(&self) -> String {
        let verb = match self.compare {
            Compare::Equals => "==",
            Compare::Contains => "contains",
        };
        let message = &self.table.message;
        format!(
            "first message {verb} {} {}",
            message.descriptor().full_name(),
            json(message)
        )
    }
    fn needs_message(&self) -> bool {
        true
    }
    fn received(&self, request: &CallRequest) -> Option<String> {
        Some(match &request.first_message {
            None => NO_MESSAGE.to_string(),
            Some(bytes) => match self.decode(bytes) {
                Some(m) => format!("received {}", json(&m)),
                None => format!(
                    "received a message that is not a {}",
                    self.table.message.descriptor().full_name()
                ),
            },
        })
    }
}
