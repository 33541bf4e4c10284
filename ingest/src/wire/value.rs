//! What every signal shares: attribute values and lists, repeated fields,
//! resources and instrumentation scopes.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValueList, any_value::Value as ProtoValue,
};
use prost::Message as _;

use super::fields::{Field, Fields, Stretch, WireError};

/// A message read in place.
pub trait Message<'a>: Sized {
    /// Reads the message's own fields; repeated and nested ones are left
    /// for [`Message::validate`] and for when they are visited.
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError>;

    /// Checks the rest: every nested message, recursively.
    fn validate(&self) -> Result<(), WireError>;
}

/// A repeated message field, read lazily from its stretch of the
/// enclosing message.
pub struct Repeated<'a, T> {
    bytes: &'a [u8],
    tag: u32,
    of: PhantomData<fn() -> T>,
}

impl<T> Clone for Repeated<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Repeated<'_, T> {}

impl<T> Default for Repeated<'_, T> {
    fn default() -> Self {
        Repeated {
            bytes: &[],
            tag: 0,
            of: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Repeated<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Repeated(field {}, {} bytes)",
            self.tag,
            self.bytes.len()
        )
    }
}

impl<'a, T: Message<'a> + 'a> Repeated<'a, T> {
    /// Field `tag` of `message`, found within `stretch`.
    pub(crate) fn new(message: &'a [u8], stretch: Stretch, tag: u32) -> Self {
        Repeated {
            bytes: stretch.of(message),
            tag,
            of: PhantomData,
        }
    }

    /// The elements, each parsed as it is reached, with any error.
    pub(crate) fn try_iter(self) -> impl Iterator<Item = Result<T, WireError>> + 'a {
        let tag = self.tag;
        Fields::new(self.bytes).filter_map(move |field| match field {
            Ok((t, field)) if t == tag => {
                Some(field.bytes(("message", "repeated")).and_then(T::parse))
            }
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// The elements; damage ends the walk, silently. For requests checked
    /// whole ([`Request::decode`](super::Request::decode)), and for passes
    /// whose result is dropped when the converter, which reads with
    /// [`Repeated::try_iter`], refuses a damaged request.
    pub fn iter(self) -> impl Iterator<Item = T> + 'a {
        self.try_iter().map_while(Result::ok)
    }

    /// The encoded elements, unparsed.
    pub(crate) fn messages(self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let tag = self.tag;
        Fields::new(self.bytes)
            .map_while(Result::ok)
            .filter_map(move |(t, field)| match field {
                Field::Bytes(bytes) if t == tag => Some(bytes),
                _ => None,
            })
    }

    /// The same elements, read as another message: a view that reads
    /// fewer of their fields.
    pub(crate) fn read_as<U: Message<'a> + 'a>(self) -> Repeated<'a, U> {
        Repeated {
            bytes: self.bytes,
            tag: self.tag,
            of: PhantomData,
        }
    }

    /// How many elements there are (up to any damage).
    pub fn len(&self) -> usize {
        self.messages().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Parses and validates every element.
    pub(crate) fn validate(&self) -> Result<(), WireError> {
        for element in self.try_iter() {
            element?.validate()?;
        }
        Ok(())
    }
}

/// A repeated field seen while parsing a message: where its occurrences
/// lie, checked to be length-delimited.
#[inline]
pub(crate) fn note(
    stretch: &mut Stretch,
    field: Field<'_>,
    start: usize,
    end: usize,
    at: (&'static str, &'static str),
) -> Result<(), WireError> {
    field.bytes(at)?;
    stretch.add(start, end);
    Ok(())
}

/// Walks `bytes` as a message, calling `f` with each field, the offsets
/// it spans and its tag.
#[inline(always)]
pub(crate) fn for_each_field<'a>(
    bytes: &'a [u8],
    f: impl FnMut(u32, Field<'a>, usize, usize) -> Result<(), WireError>,
) -> Result<(), WireError> {
    // Tag 0 is no field's: the walk refuses it.
    for_each_field_with_run(bytes, 0, f)
}

/// [`for_each_field`], passing over each run of field `run` (a repeated
/// message field, whose occurrences encoders write together) in one step:
/// `f` sees the run's first field, with `end` at the end of the run. For
/// a message whose repeated field is only [`note`]d while walking it.
#[inline(always)]
pub(crate) fn for_each_field_with_run<'a>(
    bytes: &'a [u8],
    run: u32,
    mut f: impl FnMut(u32, Field<'a>, usize, usize) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut fields = Fields::new(bytes);
    loop {
        let start = fields.offset();
        let Some(next) = fields.next() else {
            return Ok(());
        };
        let (tag, field) = next?;
        if tag == run && matches!(field, Field::Bytes(_)) {
            fields.skip_run(run);
        }
        f(tag, field, start, fields.offset())?;
    }
}

/// An attribute value, as OTLP's `AnyValue`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Value<'a> {
    /// No value set (or one only profiles use: a string table index).
    #[default]
    Empty,
    /// A string.
    String(&'a str),
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// An array of values.
    Array(Nested<'a>),
    /// A key-value list.
    Kvlist(Nested<'a>),
}

/// An array or key-value list: still encoded, or a prost struct.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nested<'a> {
    /// The encoded `ArrayValue` or `KeyValueList` message.
    Wire(&'a [u8]),
    /// The decoded value.
    Proto(&'a ProtoValue),
}

impl<'a> Value<'a> {
    /// The value a prost `AnyValue` holds.
    pub fn from_proto(value: Option<&'a AnyValue>) -> Value<'a> {
        let Some(value) = value.and_then(|v| v.value.as_ref()) else {
            return Value::Empty;
        };
        match value {
            ProtoValue::StringValue(s) => Value::String(s),
            ProtoValue::BoolValue(b) => Value::Bool(*b),
            ProtoValue::IntValue(i) => Value::Int(*i),
            ProtoValue::DoubleValue(d) => Value::Double(*d),
            ProtoValue::BytesValue(b) => Value::Bytes(b),
            ProtoValue::ArrayValue(_) => Value::Array(Nested::Proto(value)),
            ProtoValue::KvlistValue(_) => Value::Kvlist(Nested::Proto(value)),
            ProtoValue::StringValueStrindex(_) => Value::Empty,
        }
    }

    /// An array or key-value list as prost's value, decoded if need be;
    /// `None` for other values, and for one that does not decode.
    pub fn nested(self) -> Option<Cow<'a, ProtoValue>> {
        self.try_nested().ok().flatten()
    }

    /// The same, with why an encoded one does not decode. Nested values
    /// are rare: prost decodes them, with its bound on nesting depth.
    pub(crate) fn try_nested(self) -> Result<Option<Cow<'a, ProtoValue>>, WireError> {
        Ok(match self {
            Value::Array(Nested::Proto(v)) | Value::Kvlist(Nested::Proto(v)) => {
                Some(Cow::Borrowed(v))
            }
            Value::Array(Nested::Wire(bytes)) => Some(Cow::Owned(ProtoValue::ArrayValue(
                ArrayValue::decode(bytes)?,
            ))),
            Value::Kvlist(Nested::Wire(bytes)) => Some(Cow::Owned(ProtoValue::KvlistValue(
                KeyValueList::decode(bytes)?,
            ))),
            _ => None,
        })
    }
}

impl<'a> Message<'a> for Value<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut value = Value::Empty;
        // A oneof: the last field set wins.
        for_each_field(bytes, |tag, field, _, _| {
            const AT: &str = "AnyValue";
            value = match tag {
                1 => Value::String(field.string((AT, "string_value"))?),
                2 => Value::Bool(field.varint((AT, "bool_value"))? != 0),
                3 => Value::Int(field.varint((AT, "int_value"))? as i64),
                4 => Value::Double(f64::from_bits(field.fixed64((AT, "double_value"))?)),
                5 => Value::Array(Nested::Wire(field.bytes((AT, "array_value"))?)),
                6 => Value::Kvlist(Nested::Wire(field.bytes((AT, "kvlist_value"))?)),
                7 => Value::Bytes(field.bytes((AT, "bytes_value"))?),
                8 => {
                    field.varint((AT, "string_value_strindex"))?;
                    Value::Empty
                }
                _ => return Ok(()),
            };
            Ok(())
        })?;
        Ok(value)
    }

    #[inline]
    fn validate(&self) -> Result<(), WireError> {
        match self {
            // Only a still-encoded array or list has more to check.
            Value::Array(Nested::Wire(_)) | Value::Kvlist(Nested::Wire(_)) => {
                self.try_nested().map(drop)
            }
            _ => Ok(()),
        }
    }
}

/// One attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyValue<'a> {
    /// Its name.
    pub key: &'a str,
    /// Its value.
    pub value: Value<'a>,
}

impl<'a> KeyValue<'a> {
    /// [`RawKeyValue::parse_usual`], with its text checked.
    #[inline(always)]
    fn parse_usual(bytes: &'a [u8]) -> Option<Self> {
        let raw = RawKeyValue::parse_usual(bytes)?;
        Some(KeyValue {
            key: std::str::from_utf8(raw.key).ok()?,
            value: match raw.value {
                RawValue::Text(text) => Value::String(std::str::from_utf8(text).ok()?),
                RawValue::Other(value) => value,
            },
        })
    }

    fn from_proto(kv: &'a opentelemetry_proto::tonic::common::v1::KeyValue) -> Self {
        KeyValue {
            key: &kv.key,
            value: Value::from_proto(kv.value.as_ref()),
        }
    }
}

impl<'a> Message<'a> for KeyValue<'a> {
    #[inline]
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        if let Some(kv) = KeyValue::parse_usual(bytes) {
            return Ok(kv);
        }
        let mut kv = KeyValue {
            key: "",
            value: Value::Empty,
        };
        for_each_field(bytes, |tag, field, _, _| {
            match tag {
                1 => kv.key = field.string(("KeyValue", "key"))?,
                2 => kv.value = Value::parse(field.bytes(("KeyValue", "value"))?)?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(kv)
    }

    fn validate(&self) -> Result<(), WireError> {
        self.value.validate()
    }
}

/// An attribute whose text is not checked to be UTF-8 yet: for a reader
/// that checks all of it at once, as the converter's attribute columns do
/// when they are finished.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawKeyValue<'a> {
    /// Its name's bytes.
    pub(crate) key: &'a [u8],
    /// Its value.
    pub(crate) value: RawValue<'a>,
}

/// An attribute value, a string's text unchecked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawValue<'a> {
    /// A string's bytes.
    Text(&'a [u8]),
    /// Any other value (never [`Value::String`]).
    Other(Value<'a>),
}

impl<'a> RawKeyValue<'a> {
    /// The layout SDKs write: the key, then the value, each once and
    /// shorter than 128 bytes. `None` for any other layout, and for a
    /// damaged one: the general walk reads those, and names the damage.
    #[inline(always)]
    fn parse_usual(bytes: &'a [u8]) -> Option<Self> {
        let [0x0a, key_len, rest @ ..] = bytes else {
            return None;
        };
        if *key_len >= 0x80 {
            return None;
        }
        let (key, rest) = rest.split_at_checked(usize::from(*key_len))?;
        let [0x12, value_len, value @ ..] = rest else {
            return None;
        };
        if *value_len >= 0x80 || value.len() != usize::from(*value_len) {
            return None;
        }
        let value = match value {
            // A string value, the usual kind.
            [0x0a, len, text @ ..] if *len < 0x80 && text.len() == usize::from(*len) => {
                RawValue::Text(text)
            }
            _ => RawValue::from(Value::parse(value).ok()?),
        };
        Some(RawKeyValue { key, value })
    }
}

impl<'a> From<Value<'a>> for RawValue<'a> {
    #[inline]
    fn from(value: Value<'a>) -> Self {
        match value {
            Value::String(text) => RawValue::Text(text.as_bytes()),
            value => RawValue::Other(value),
        }
    }
}

impl<'a> From<KeyValue<'a>> for RawKeyValue<'a> {
    #[inline]
    fn from(kv: KeyValue<'a>) -> Self {
        RawKeyValue {
            key: kv.key.as_bytes(),
            value: kv.value.into(),
        }
    }
}

impl<'a> Message<'a> for RawKeyValue<'a> {
    /// The usual layout is read without checking its text; any other is
    /// read (and checked) as a [`KeyValue`].
    #[inline]
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        match RawKeyValue::parse_usual(bytes) {
            Some(kv) => Ok(kv),
            None => KeyValue::parse(bytes).map(RawKeyValue::from),
        }
    }

    #[inline]
    fn validate(&self) -> Result<(), WireError> {
        match self.value {
            RawValue::Text(_) => Ok(()),
            RawValue::Other(value) => value.validate(),
        }
    }
}

/// A list of attributes: read in place, or prost's (metrics, and tests).
#[derive(Debug, Clone, Copy)]
pub enum Attributes<'a> {
    /// Read from the request body.
    Wire(Repeated<'a, KeyValue<'a>>),
    /// prost's list.
    Proto(&'a [opentelemetry_proto::tonic::common::v1::KeyValue]),
}

impl Default for Attributes<'_> {
    fn default() -> Self {
        Attributes::Proto(&[])
    }
}

impl<'a> From<&'a [opentelemetry_proto::tonic::common::v1::KeyValue]> for Attributes<'a> {
    fn from(list: &'a [opentelemetry_proto::tonic::common::v1::KeyValue]) -> Self {
        Attributes::Proto(list)
    }
}

impl<'a> Attributes<'a> {
    /// The attributes in order.
    #[inline]
    pub fn iter(self) -> AttributesIter<'a> {
        match self {
            Attributes::Wire(list) => AttributesIter(Walk::Wire(Fields::new(list.bytes), list.tag)),
            Attributes::Proto(list) => AttributesIter(Walk::Proto(list.iter())),
        }
    }

    /// The attributes in order, with any damage found reading them.
    pub(crate) fn try_iter(self) -> impl Iterator<Item = Result<KeyValue<'a>, WireError>> + 'a {
        let (wire, proto) = match self {
            Attributes::Wire(list) => (Some(list.try_iter()), None),
            Attributes::Proto(list) => (
                None,
                Some(list.iter().map(|kv| Ok(KeyValue::from_proto(kv)))),
            ),
        };
        wire.into_iter()
            .flatten()
            .chain(proto.into_iter().flatten())
    }

    /// Reads the attributes into `into` (cleared first), their text
    /// unchecked and everything else checked.
    pub(crate) fn read_raw(self, into: &mut Vec<RawKeyValue<'a>>) -> Result<(), WireError> {
        into.clear();
        match self {
            Attributes::Wire(list) => {
                for attribute in list.read_as::<RawKeyValue>().try_iter() {
                    let attribute = attribute?;
                    attribute.validate()?;
                    into.push(attribute);
                }
            }
            Attributes::Proto(list) => {
                into.extend(
                    list.iter()
                        .map(|kv| RawKeyValue::from(KeyValue::from_proto(kv))),
                );
            }
        }
        Ok(())
    }

    /// The value of the first attribute named `key`, if there is one
    /// (its value may be [`Value::Empty`]).
    #[inline]
    pub fn find(self, key: &str) -> Option<Value<'a>> {
        self.entries()
            .find(|(name, _)| *name == key.as_bytes())
            .and_then(|(_, value)| value.read())
    }

    /// Each attribute's name as bytes, with its value still encoded: a
    /// search reads only the value it wants, and checks no UTF-8 (a name
    /// equal to a `&str` is valid UTF-8). Damage ends the walk, as in
    /// [`Attributes::iter`].
    #[inline]
    pub(crate) fn entries(self) -> Entries<'a> {
        match self {
            Attributes::Wire(list) => Entries(Walk::Wire(Fields::new(list.bytes), list.tag)),
            Attributes::Proto(list) => Entries(Walk::Proto(list.iter())),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), WireError> {
        match self {
            Attributes::Wire(list) => list.validate(),
            Attributes::Proto(_) => Ok(()),
        }
    }
}

/// An attribute's value as [`Attributes::entries`] gives it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EncodedValue<'a> {
    /// The encoded `AnyValue` (empty when the attribute has none).
    Wire(&'a [u8]),
    /// prost's, already decoded.
    Proto(Value<'a>),
}

impl<'a> EncodedValue<'a> {
    /// The value, or `None` when it does not parse.
    #[inline]
    pub(crate) fn read(self) -> Option<Value<'a>> {
        match self {
            EncodedValue::Wire(bytes) => Value::parse(bytes).ok(),
            EncodedValue::Proto(value) => Some(value),
        }
    }
}

/// The name and encoded value of one encoded `KeyValue` (the last of each,
/// as protobuf reads a repeated scalar); `None` when it is damaged.
#[inline]
fn entry(bytes: &[u8]) -> Option<(&[u8], EncodedValue<'_>)> {
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    for field in Fields::new(bytes) {
        match field.ok()? {
            (1, Field::Bytes(bytes)) => key = bytes,
            (2, Field::Bytes(bytes)) => value = bytes,
            (1 | 2, _) => return None,
            _ => {}
        }
    }
    Some((key, EncodedValue::Wire(value)))
}

/// The iterator of [`Attributes::entries`].
pub(crate) struct Entries<'a>(Walk<'a>);

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], EncodedValue<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Walk::Wire(fields, tag) => loop {
                // Damage ends the walk.
                let Some(Ok((t, field))) = fields.next() else {
                    *fields = Fields::new(&[]);
                    return None;
                };
                if let Field::Bytes(bytes) = field
                    && t == *tag
                {
                    let found = entry(bytes);
                    if found.is_none() {
                        *fields = Fields::new(&[]);
                    }
                    return found;
                }
            },
            Walk::Proto(list) => list.next().map(|kv| {
                let value = EncodedValue::Proto(Value::from_proto(kv.value.as_ref()));
                (kv.key.as_bytes(), value)
            }),
        }
    }
}

/// The iterator of [`Attributes::iter`].
pub struct AttributesIter<'a>(Walk<'a>);

enum Walk<'a> {
    /// Over the fields of the encoded list, keeping those of its tag.
    Wire(Fields<'a>, u32),
    /// Over prost's list.
    Proto(std::slice::Iter<'a, opentelemetry_proto::tonic::common::v1::KeyValue>),
}

impl<'a> Iterator for AttributesIter<'a> {
    type Item = KeyValue<'a>;

    #[inline]
    fn next(&mut self) -> Option<KeyValue<'a>> {
        match &mut self.0 {
            Walk::Wire(fields, tag) => loop {
                let (t, field) = fields.next()?.ok()?;
                if t != *tag {
                    continue;
                }
                // Damage ends the walk (see `Repeated::iter`).
                return match field {
                    Field::Bytes(bytes) => KeyValue::parse(bytes).ok(),
                    _ => None,
                };
            },
            Walk::Proto(list) => list.next().map(KeyValue::from_proto),
        }
    }
}

/// A resource: its attributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resource<'a> {
    /// `service.name`, `service.version`, …
    pub attributes: Attributes<'a>,
}

impl<'a> Resource<'a> {
    /// prost's resource, if any.
    pub fn from_proto(
        resource: Option<&'a opentelemetry_proto::tonic::resource::v1::Resource>,
    ) -> Self {
        Resource {
            attributes: resource
                .map(|r| Attributes::Proto(&r.attributes))
                .unwrap_or_default(),
        }
    }
}

impl<'a> Message<'a> for Resource<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut attributes = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            if tag == 1 {
                note(
                    &mut attributes,
                    field,
                    start,
                    end,
                    ("Resource", "attributes"),
                )?;
            }
            Ok(())
        })?;
        Ok(Resource {
            attributes: Attributes::Wire(Repeated::new(bytes, attributes, 1)),
        })
    }

    fn validate(&self) -> Result<(), WireError> {
        self.attributes.validate()
    }
}

/// An instrumentation scope.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// Its name (empty when not set).
    pub name: &'a str,
    /// Its version (empty when not set).
    pub version: &'a str,
    /// Its attributes.
    pub attributes: Attributes<'a>,
}

impl<'a> Scope<'a> {
    /// prost's scope, if any.
    pub fn from_proto(
        scope: Option<&'a opentelemetry_proto::tonic::common::v1::InstrumentationScope>,
    ) -> Self {
        scope
            .map(|s| Scope {
                name: &s.name,
                version: &s.version,
                attributes: Attributes::Proto(&s.attributes),
            })
            .unwrap_or_default()
    }
}

impl<'a> Message<'a> for Scope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "InstrumentationScope";
        let mut scope = Scope::default();
        let mut attributes = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            match tag {
                1 => scope.name = field.string((AT, "name"))?,
                2 => scope.version = field.string((AT, "version"))?,
                3 => note(&mut attributes, field, start, end, (AT, "attributes"))?,
                _ => {}
            }
            Ok(())
        })?;
        scope.attributes = Attributes::Wire(Repeated::new(bytes, attributes, 3));
        Ok(scope)
    }

    fn validate(&self) -> Result<(), WireError> {
        self.attributes.validate()
    }
}
