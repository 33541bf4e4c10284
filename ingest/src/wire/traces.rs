//! `ExportTraceServiceRequest`, read in place.

use super::fields::{Stretch, WireError};
use super::value::{
    Attributes, Message, Repeated, Resource, Scope, for_each_field, for_each_field_with_run, note,
};

/// A resource and its spans, by scope.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceSpans<'a> {
    /// The resource.
    pub resource: Resource<'a>,
    /// Its scopes.
    pub scope_spans: Repeated<'a, ScopeSpans<'a>>,
}

impl<'a> Message<'a> for ResourceSpans<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "ResourceSpans";
        let mut resource = Resource::default();
        let mut scopes = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            match tag {
                1 => resource = Resource::parse(field.bytes((AT, "resource"))?)?,
                2 => note(&mut scopes, field, start, end, (AT, "scope_spans"))?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(ResourceSpans {
            resource,
            scope_spans: Repeated::new(bytes, scopes, 2),
        })
    }

    fn validate(&self) -> Result<(), WireError> {
        self.resource.validate()?;
        self.scope_spans.validate()
    }
}

/// A scope and its spans.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeSpans<'a> {
    /// The instrumentation scope.
    pub scope: Scope<'a>,
    /// Its spans.
    pub spans: Repeated<'a, Span<'a>>,
}

impl<'a> Message<'a> for ScopeSpans<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "ScopeSpans";
        let mut scope = Scope::default();
        let mut spans = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            match tag {
                1 => scope = Scope::parse(field.bytes((AT, "scope"))?)?,
                2 => note(&mut spans, field, start, end, (AT, "spans"))?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(ScopeSpans {
            scope,
            spans: Repeated::new(bytes, spans, 2),
        })
    }

    fn validate(&self) -> Result<(), WireError> {
        self.scope.validate()?;
        self.spans.validate()
    }
}

/// A span's status.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status<'a> {
    /// Its description.
    pub message: &'a str,
    /// `0` unset, `1` ok, `2` error.
    pub code: i32,
}

/// One span.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span<'a> {
    /// 16 bytes when valid.
    pub trace_id: &'a [u8],
    /// 8 bytes when valid.
    pub span_id: &'a [u8],
    /// W3C trace state.
    pub trace_state: &'a str,
    /// Empty for a root span, else 8 bytes.
    pub parent_span_id: &'a [u8],
    /// W3C trace flags and OTLP's span flags.
    pub flags: u32,
    /// The operation.
    pub name: &'a str,
    /// `SpanKind` as a number.
    pub kind: i32,
    /// Start, nanoseconds since the epoch.
    pub start_time_unix_nano: u64,
    /// End, nanoseconds since the epoch.
    pub end_time_unix_nano: u64,
    /// The span's attributes.
    pub attributes: Attributes<'a>,
    /// Its events.
    pub events: Repeated<'a, Event<'a>>,
    /// Its links.
    pub links: Repeated<'a, Link<'a>>,
    /// Its status, if sent.
    pub status: Option<Status<'a>>,
}

impl<'a> Message<'a> for Span<'a> {
    #[inline]
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "Span";
        let mut span = Span::default();
        let (mut attributes, mut events, mut links) = Default::default();
        for_each_field_with_run(bytes, 9, |tag, field, start, end| {
            match tag {
                1 => span.trace_id = field.bytes((AT, "trace_id"))?,
                2 => span.span_id = field.bytes((AT, "span_id"))?,
                3 => span.trace_state = field.string((AT, "trace_state"))?,
                4 => span.parent_span_id = field.bytes((AT, "parent_span_id"))?,
                5 => span.name = field.string((AT, "name"))?,
                6 => span.kind = field.int32((AT, "kind"))?,
                7 => span.start_time_unix_nano = field.fixed64((AT, "start_time_unix_nano"))?,
                8 => span.end_time_unix_nano = field.fixed64((AT, "end_time_unix_nano"))?,
                9 => note(&mut attributes, field, start, end, (AT, "attributes"))?,
                11 => note(&mut events, field, start, end, (AT, "events"))?,
                13 => note(&mut links, field, start, end, (AT, "links"))?,
                15 => span.status = Some(status(field.bytes((AT, "status"))?)?),
                16 => span.flags = field.fixed32((AT, "flags"))?,
                10 | 12 | 14 => {
                    field.varint((AT, "dropped_count"))?;
                }
                _ => {}
            }
            Ok(())
        })?;
        span.attributes = Attributes::Wire(Repeated::new(bytes, attributes, 9));
        span.events = Repeated::new(bytes, events, 11);
        span.links = Repeated::new(bytes, links, 13);
        Ok(span)
    }

    fn validate(&self) -> Result<(), WireError> {
        self.attributes.validate()?;
        self.events.validate()?;
        self.links.validate()
    }
}

fn status(bytes: &[u8]) -> Result<Status<'_>, WireError> {
    let mut status = Status::default();
    for_each_field(bytes, |tag, field, _, _| {
        match tag {
            2 => status.message = field.string(("Status", "message"))?,
            3 => status.code = field.int32(("Status", "code"))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(status)
}

/// A span event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Event<'a> {
    /// When, nanoseconds since the epoch.
    pub time_unix_nano: u64,
    /// What.
    pub name: &'a str,
    /// Its attributes.
    pub attributes: Attributes<'a>,
}

impl<'a> Message<'a> for Event<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "Event";
        let mut event = Event::default();
        let mut attributes = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            match tag {
                1 => event.time_unix_nano = field.fixed64((AT, "time_unix_nano"))?,
                2 => event.name = field.string((AT, "name"))?,
                3 => note(&mut attributes, field, start, end, (AT, "attributes"))?,
                _ => {}
            }
            Ok(())
        })?;
        event.attributes = Attributes::Wire(Repeated::new(bytes, attributes, 3));
        Ok(event)
    }

    fn validate(&self) -> Result<(), WireError> {
        self.attributes.validate()
    }
}

/// A link to another span.
#[derive(Debug, Clone, Copy, Default)]
pub struct Link<'a> {
    /// The linked trace.
    pub trace_id: &'a [u8],
    /// The linked span.
    pub span_id: &'a [u8],
    /// Its trace state.
    pub trace_state: &'a str,
    /// The link's attributes.
    pub attributes: Attributes<'a>,
}

impl<'a> Message<'a> for Link<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "Link";
        let mut link = Link::default();
        let mut attributes = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            match tag {
                1 => link.trace_id = field.bytes((AT, "trace_id"))?,
                2 => link.span_id = field.bytes((AT, "span_id"))?,
                3 => link.trace_state = field.string((AT, "trace_state"))?,
                4 => note(&mut attributes, field, start, end, (AT, "attributes"))?,
                _ => {}
            }
            Ok(())
        })?;
        link.attributes = Attributes::Wire(Repeated::new(bytes, attributes, 4));
        Ok(link)
    }

    fn validate(&self) -> Result<(), WireError> {
        self.attributes.validate()
    }
}
