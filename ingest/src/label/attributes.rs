//! Rules read OTLP attributes where they are: an [`Attributes`] adapter over
//! a record's `KeyValue` list and its resource's, in the lookup order of
//! [`grayscope_core::cohort`], without building a map.
//!
//! Only the names the rules mention are ever looked up ([`Lookups`]). Each
//! is resolved at most once per record (and once per resource), on first
//! use, into a memo cell: a string value is borrowed from the request;
//! other values are rendered as text exactly as they are stored (ints in
//! decimal, …), small ones in place without allocating.

use std::cell::{Cell, OnceCell, RefCell};

use grayscope_core::cohort::{BAGGAGE_HEADER_ATTRIBUTES, BAGGAGE_PREFIX, baggage_value};
use grayscope_core::rule::{Attributes, Rule};

use crate::convert::value_text;
use crate::wire::{self, Value};

/// The attribute names a set of rules reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lookups {
    /// Sorted, without duplicates.
    names: Box<[Box<str>]>,
    /// What a record's attributes are searched for, in one walk: every
    /// name, the key a `baggage.` name falls back to, and (when there is a
    /// `baggage.` name) the baggage header attributes. Sorted, without
    /// duplicates.
    keys: Box<[Box<str>]>,
    /// Bit `n` is set when a key is `n` bytes long (bit 63: 63 or more):
    /// most of a record's attribute names are told apart by length alone.
    key_lengths: u64,
    /// Per name: the slot (index in `keys`) of the name itself (always
    /// there), and of the key it falls back to.
    slots: Box<[(Option<usize>, Option<usize>)]>,
    /// The slots of [`BAGGAGE_HEADER_ATTRIBUTES`], in that order; empty
    /// when no name reads baggage.
    headers: Box<[usize]>,
}

impl Lookups {
    pub(crate) fn new<'r>(rules: impl Iterator<Item = &'r Rule>) -> Lookups {
        let mut names: Vec<Box<str>> = rules
            .flat_map(|rule| rule.attributes().iter().map(|n| n.as_str().into()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let baggage = names.iter().filter_map(|n| n.strip_prefix(BAGGAGE_PREFIX));
        let any_baggage = baggage.clone().next().is_some();
        let headers = BAGGAGE_HEADER_ATTRIBUTES
            .iter()
            .filter(|_| any_baggage)
            .copied();
        let mut keys: Vec<Box<str>> = names
            .iter()
            .cloned()
            .chain(baggage.chain(headers).map(Box::from))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let slot = |key: &str| keys.binary_search_by(|k| (**k).cmp(key)).ok();
        let slots = names
            .iter()
            .map(|n| (slot(n), n.strip_prefix(BAGGAGE_PREFIX).and_then(slot)))
            .collect();
        let headers = BAGGAGE_HEADER_ATTRIBUTES
            .iter()
            .filter_map(|h| slot(h).filter(|_| any_baggage))
            .collect();
        let key_lengths = keys
            .iter()
            .fold(0, |mask, key| mask | length_bit(key.as_bytes()));
        Lookups {
            names: names.into(),
            keys: keys.into(),
            key_lengths,
            slots,
            headers,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    #[inline]
    fn index(&self, key: &str) -> Option<usize> {
        search(&self.names, key.as_bytes())
    }

    /// The slot of `key` among the keys, if it is one.
    #[inline]
    fn key_slot(&self, key: &[u8]) -> Option<usize> {
        if self.key_lengths & length_bit(key) == 0 {
            return None;
        }
        search(&self.keys, key)
    }
}

/// The bit of [`Lookups::key_lengths`] for `key`'s length.
#[inline]
fn length_bit(key: &[u8]) -> u64 {
    1 << key.len().min(63)
}

/// The position of `key` in `sorted`: a scan for a few, a binary search
/// for more.
#[inline]
fn search(sorted: &[Box<str>], key: &[u8]) -> Option<usize> {
    if sorted.len() <= 16 {
        // Length and last byte first: most attribute names differ there,
        // and comparing them costs no call.
        sorted.iter().position(|n| {
            let n = n.as_bytes();
            n.len() == key.len() && n.last() == key.last() && n == key
        })
    } else {
        sorted.binary_search_by(|n| n.as_bytes().cmp(key)).ok()
    }
}

/// An attribute value as text.
#[derive(Debug, Clone)]
pub(crate) enum Text<'a> {
    /// A string value, borrowed from the request.
    Borrowed(&'a str),
    /// A short rendering (an int, a bool, a short double).
    Inline { bytes: [u8; INLINE], len: u8 },
    /// A long rendering or a decoded baggage value.
    Owned(Box<str>),
}

const INLINE: usize = 30;

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(text) => text,
            // Only whole UTF-8 strings are copied in.
            Text::Inline { bytes, len } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Text::Owned(text) => text,
        }
    }

    fn copied(text: &str) -> Text<'static> {
        if text.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Text::Inline {
                bytes,
                len: text.len() as u8,
            }
        } else {
            Text::Owned(text.into())
        }
    }
}

/// Renders values that are not strings; shared by one request's records.
#[derive(Debug, Default)]
pub(crate) struct Scratch(RefCell<String>);

impl Scratch {
    /// The text of a value, as the `attributes` columns store it; `None`
    /// for an absent or empty value.
    fn text<'a>(&self, value: Option<Value<'a>>) -> Option<Text<'a>> {
        match value? {
            Value::Empty => None,
            Value::String(text) => Some(Text::Borrowed(text)),
            Value::Bool(true) => Some(Text::Borrowed("true")),
            Value::Bool(false) => Some(Text::Borrowed("false")),
            value => {
                let mut scratch = self.0.try_borrow_mut().ok()?;
                value_text(value, &mut scratch).map(Text::copied)
            }
        }
    }
}

/// The first attribute named `key`: `Some(value)` (which may be empty)
/// when there is one.
#[inline]
fn find<'a>(attributes: wire::Attributes<'a>, key: &str) -> Option<Value<'a>> {
    attributes.find(key)
}

type TextCell<'a> = OnceCell<Option<Text<'a>>>;

/// A resource's attributes, each looked-up name resolved once for all of
/// the resource's records.
pub(crate) struct ResourceValues<'a> {
    attributes: wire::Attributes<'a>,
    cells: Box<[TextCell<'a>]>,
}

impl<'a> ResourceValues<'a> {
    pub(crate) fn new(lookups: &Lookups, attributes: wire::Attributes<'a>) -> Self {
        ResourceValues {
            attributes,
            cells: (0..lookups.len()).map(|_| OnceCell::new()).collect(),
        }
    }

    fn get(&self, lookups: &Lookups, index: usize, scratch: &Scratch) -> Option<&str> {
        self.cells[index]
            .get_or_init(|| scratch.text(find(self.attributes, &lookups.names[index])))
            .as_ref()
            .map(Text::as_str)
    }
}

/// What a record's memo cell holds.
#[derive(Debug, Clone)]
enum Resolved<'a> {
    /// Nowhere to be found.
    Missing,
    /// From the record itself (or its baggage).
    Own(Text<'a>),
    /// From the resource: read its cell.
    Resource,
}

/// The memo cells of one record, reused from record to record.
pub(crate) struct RecordCells<'a> {
    resolved: Box<[OnceCell<Resolved<'a>>]>,
    /// The record's first value of each of [`Lookups::keys`], all read in
    /// one walk of its attributes, on first need.
    found: Box<[Cell<Option<Value<'a>>>]>,
    walked: Cell<bool>,
}

impl<'a> RecordCells<'a> {
    pub(crate) fn new(lookups: &Lookups) -> Self {
        RecordCells {
            resolved: (0..lookups.len()).map(|_| OnceCell::new()).collect(),
            found: (0..lookups.keys.len()).map(|_| Cell::new(None)).collect(),
            walked: Cell::new(false),
        }
    }

    /// Takes the record's own values from its attributes, read already:
    /// no walk of its encoding is needed then.
    pub(crate) fn fill(&mut self, lookups: &Lookups, attributes: &[wire::RawKeyValue<'a>]) {
        self.walked.set(true);
        for attribute in attributes {
            if let Some(slot) = lookups.key_slot(attribute.key) {
                let cell = &self.found[slot];
                if cell.get().is_none() {
                    cell.set(Some(match attribute.value {
                        // Text that is not UTF-8 refuses the request when
                        // its attribute column is finished; until then, no
                        // value.
                        wire::RawValue::Text(text) => {
                            std::str::from_utf8(text).map_or(Value::Empty, Value::String)
                        }
                        wire::RawValue::Other(value) => value,
                    }));
                }
            }
        }
    }

    /// Forgets the previous record.
    #[inline]
    pub(crate) fn clear(&mut self) {
        for cell in self.resolved.iter_mut() {
            cell.take();
        }
        if self.walked.replace(false) {
            for cell in self.found.iter() {
                cell.set(None);
            }
        }
    }
}

/// One record as a rule sees it.
pub(crate) struct RecordAttributes<'l, 'a> {
    pub(crate) lookups: &'l Lookups,
    pub(crate) record: wire::Attributes<'a>,
    pub(crate) resource: &'l ResourceValues<'a>,
    pub(crate) cells: &'l RecordCells<'a>,
    pub(crate) scratch: &'l Scratch,
}

impl<'a> RecordAttributes<'_, 'a> {
    /// The record's own value of the key in `slot`, if it has that
    /// attribute. The first call reads every slot in one walk, parsing
    /// only the values it keeps.
    fn found(&self, slot: usize) -> Option<Value<'a>> {
        let cells = self.cells;
        if !cells.walked.replace(true) {
            let mut wanted = cells.found.len();
            for (key, value) in self.record.entries() {
                let Some(cell) = self.lookups.key_slot(key).map(|s| &cells.found[s]) else {
                    continue;
                };
                if cell.get().is_some() {
                    continue;
                }
                // Damage ends the walk, as it ends `Attributes::find`'s.
                let Some(value) = value.read() else { break };
                cell.set(Some(value));
                wanted -= 1;
                if wanted == 0 {
                    break;
                }
            }
        }
        cells.found[slot].get()
    }

    fn resolve(&self, index: usize) -> Resolved<'a> {
        let name = &*self.lookups.names[index];
        let (own, fallback) = self.lookups.slots[index];
        if let Some(text) = self.scratch.text(own.and_then(|slot| self.found(slot))) {
            return Resolved::Own(text);
        }
        if self
            .resource
            .get(self.lookups, index, self.scratch)
            .is_some()
        {
            return Resolved::Resource;
        }
        let Some(key) = name.strip_prefix(BAGGAGE_PREFIX) else {
            return Resolved::Missing;
        };
        for &header in &self.lookups.headers {
            let Some(value) = self.found(header) else {
                continue;
            };
            let found = match value {
                Value::Empty => None,
                Value::String(text) => baggage_value(text, key).map(|v| match v {
                    std::borrow::Cow::Borrowed(text) => Text::Borrowed(text),
                    std::borrow::Cow::Owned(text) => Text::Owned(text.into()),
                }),
                // An array of header values (as the semantic conventions
                // capture headers) is read from its stored JSON text, as SQL
                // reads it.
                _ => {
                    let mut rendered = String::new();
                    value_text(value, &mut rendered)
                        .and_then(|text| baggage_value(text, key))
                        .map(|v| Text::Owned(v.into_owned().into()))
                }
            };
            if let Some(text) = found {
                return Resolved::Own(text);
            }
        }
        match self
            .scratch
            .text(fallback.and_then(|slot| self.found(slot)))
        {
            Some(text) => Resolved::Own(text),
            None => Resolved::Missing,
        }
    }
}

impl Attributes for RecordAttributes<'_, '_> {
    #[inline]
    fn get(&self, key: &str) -> Option<&str> {
        let index = self.lookups.index(key)?;
        match self.cells.resolved[index].get_or_init(|| self.resolve(index)) {
            Resolved::Missing => None,
            Resolved::Own(text) => Some(text.as_str()),
            Resolved::Resource => self.resource.get(self.lookups, index, self.scratch),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::HashMap;

    use grayscope_core::cohort::resolve;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
    };
    use proptest::prelude::*;
    use proptest::sample::select;
    use prost::Message as _;

    use super::*;

    fn kv(key: &str, value: Option<Value>) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value }),
            key_strindex: 0,
        }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        kv(key, Some(Value::StringValue(value.to_owned())))
    }

    /// The reference: the stored text form of each attribute, first key
    /// wins, absent values missing, looked up by `cohort::resolve`.
    fn stored(attributes: &[KeyValue]) -> HashMap<String, String> {
        let mut map = HashMap::new();
        for attribute in attributes.iter().rev() {
            let mut scratch = String::new();
            match value_text(
                crate::wire::Value::from_proto(attribute.value.as_ref()),
                &mut scratch,
            ) {
                Some(text) => {
                    map.insert(attribute.key.clone(), text.to_owned());
                }
                None => {
                    map.remove(&attribute.key);
                }
            }
        }
        map
    }

    /// What the adapter answers for each name, the same whether the
    /// attributes are prost's or read in place from their encoding.
    fn adapter_answers(
        names: &[&str],
        record: &[KeyValue],
        resource: &[KeyValue],
    ) -> Vec<Option<String>> {
        let from_proto = answers(names, record.into(), resource.into());
        let record = encoded(record);
        let resource = encoded(resource);
        let from_wire = answers(names, wire_list(&record), wire_list(&resource));
        assert_eq!(from_proto, from_wire);
        let mut read = Vec::new();
        wire_list(&record).read_raw(&mut read).unwrap();
        let from_read = answers_read(names, &read, wire_list(&resource));
        assert_eq!(from_proto, from_read);
        from_proto
    }

    fn encoded(list: &[KeyValue]) -> Vec<u8> {
        KeyValueList {
            values: list.to_vec(),
        }
        .encode_to_vec()
    }

    /// A `KeyValueList` encodes its entries as field 1, as a resource
    /// does its attributes.
    fn wire_list(bytes: &[u8]) -> wire::Attributes<'_> {
        <crate::wire::Resource as crate::wire::Message>::parse(bytes)
            .unwrap()
            .attributes
    }

    fn answers(
        names: &[&str],
        record: wire::Attributes<'_>,
        resource: wire::Attributes<'_>,
    ) -> Vec<Option<String>> {
        answer(names, record, None, resource)
    }

    /// The same for a record whose attributes the converter read already
    /// ([`RecordCells::fill`]).
    fn answers_read(
        names: &[&str],
        record: &[wire::RawKeyValue<'_>],
        resource: wire::Attributes<'_>,
    ) -> Vec<Option<String>> {
        answer(names, wire::Attributes::default(), Some(record), resource)
    }

    fn answer<'a>(
        names: &[&str],
        record: wire::Attributes<'a>,
        read: Option<&[wire::RawKeyValue<'a>]>,
        resource: wire::Attributes<'a>,
    ) -> Vec<Option<String>> {
        let rule = Rule::parse(
            &names
                .iter()
                .map(|n| format!("`{n}` == \"\""))
                .collect::<Vec<_>>()
                .join(" OR "),
        )
        .unwrap();
        let lookups = Lookups::new(std::iter::once(&rule));
        let scratch = Scratch::default();
        let resource = ResourceValues::new(&lookups, resource);
        let mut cells = RecordCells::new(&lookups);
        if let Some(read) = read {
            cells.fill(&lookups, read);
        }
        let attrs = RecordAttributes {
            lookups: &lookups,
            record,
            resource: &resource,
            cells: &cells,
            scratch: &scratch,
        };
        names
            .iter()
            .map(|n| attrs.get(n).map(str::to_owned))
            .collect()
    }

    #[test]
    fn values_render_as_stored_and_layers_apply() {
        let record = vec![
            kv("status", Some(Value::IntValue(503))),
            kv("ratio", Some(Value::DoubleValue(0.25))),
            kv("big", Some(Value::DoubleValue(1e40))),
            kv("ok", Some(Value::BoolValue(true))),
            kv("empty", None),
            text("geo", "华南"),
            text("geo", "shadowed"),
            text("group", "bare"),
            kv(
                "http.request.header.baggage",
                Some(Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::StringValue("tier=gold,geo=x".into())),
                    }],
                })),
            ),
            text("baggage", "region=%E5%8D%8E%E5%8D%97"),
        ];
        let resource = vec![text("empty", "from resource"), text("isp", "移动")];
        let names = [
            "status",
            "ratio",
            "big",
            "ok",
            "empty",
            "geo",
            "isp",
            "baggage.group",
            "baggage.tier",
            "baggage.region",
            "baggage.none",
            "nothing",
        ];
        let got = adapter_answers(&names, &record, &resource);
        let want: Vec<Option<String>> = [
            Some("503"),
            Some("0.25"),
            Some("10000000000000000000000000000000000000000"),
            Some("true"),
            Some("from resource"),
            Some("华南"),
            Some("移动"),
            Some("bare"),
            Some("gold"),
            Some("华南"),
            None,
            None,
        ]
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect();
        assert_eq!(got, want);
    }

    const NAMES: &[&str] = &[
        "geo",
        "group",
        "baggage.group",
        "baggage.geo",
        "baggage",
        "http.request.header.baggage",
        "n",
    ];
    const VALUES: &[&str] = &[
        "华南",
        "beta",
        "group=beta",
        "geo=%E5%8D%8E, group=x",
        "1",
        "",
    ];

    fn value() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            4 => select(VALUES).prop_map(|v| Some(Value::StringValue(v.to_owned()))),
            1 => any::<i64>().prop_map(|i| Some(Value::IntValue(i))),
            1 => any::<f64>().prop_map(|d| Some(Value::DoubleValue(d))),
            1 => any::<bool>().prop_map(|b| Some(Value::BoolValue(b))),
            1 => prop::collection::vec(select(VALUES), 0..3).prop_map(|items| {
                Some(Value::ArrayValue(ArrayValue {
                    values: items
                        .into_iter()
                        .map(|v| AnyValue { value: Some(Value::StringValue(v.to_owned())) })
                        .collect(),
                }))
            }),
            1 => Just(None),
        ]
    }

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        prop::collection::vec((select(NAMES), value()), 0..6)
            .prop_map(|pairs| pairs.into_iter().map(|(k, v)| kv(k, v)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The adapter reads exactly what `cohort::resolve` reads from the
        /// stored text of the same attributes.
        #[test]
        fn adapter_matches_the_reference_resolution(record in attributes(), resource in attributes()) {
            let got = adapter_answers(NAMES, &record, &resource);
            let (record_map, resource_map) = (stored(&record), stored(&resource));
            let want: Vec<Option<String>> = NAMES
                .iter()
                .map(|n| resolve(n, &record_map, &resource_map).map(Cow::into_owned))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
