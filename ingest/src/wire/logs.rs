//! `ExportLogsServiceRequest`, read in place.

use super::fields::{Stretch, WireError};
use super::value::{
    Attributes, Message, Repeated, Resource, Scope, Value, for_each_field, for_each_field_with_run,
    note,
};

/// A resource and its log records, by scope.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceLogs<'a> {
    /// The resource.
    pub resource: Resource<'a>,
    /// Its scopes.
    pub scope_logs: Repeated<'a, ScopeLogs<'a>>,
}

impl<'a> Message<'a> for ResourceLogs<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "ResourceLogs";
        let mut resource = Resource::default();
        let mut scopes = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            match tag {
                1 => resource = Resource::parse(field.bytes((AT, "resource"))?)?,
                2 => note(&mut scopes, field, start, end, (AT, "scope_logs"))?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(ResourceLogs {
            resource,
            scope_logs: Repeated::new(bytes, scopes, 2),
        })
    }

    fn validate(&self) -> Result<(), WireError> {
        self.resource.validate()?;
        self.scope_logs.validate()
    }
}

/// A scope and its log records.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeLogs<'a> {
    /// The instrumentation scope.
    pub scope: Scope<'a>,
    /// Its log records.
    pub log_records: Repeated<'a, LogRecord<'a>>,
}

impl<'a> Message<'a> for ScopeLogs<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "ScopeLogs";
        let mut scope = Scope::default();
        let mut records = Stretch::default();
        for_each_field(bytes, |tag, field, start, end| {
            match tag {
                1 => scope = Scope::parse(field.bytes((AT, "scope"))?)?,
                2 => note(&mut records, field, start, end, (AT, "log_records"))?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(ScopeLogs {
            scope,
            log_records: Repeated::new(bytes, records, 2),
        })
    }

    fn validate(&self) -> Result<(), WireError> {
        self.scope.validate()?;
        self.log_records.validate()
    }
}

/// One log record.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogRecord<'a> {
    /// When the event happened, nanoseconds since the epoch (0: unknown).
    pub time_unix_nano: u64,
    /// When it was observed (0: unknown).
    pub observed_time_unix_nano: u64,
    /// `SeverityNumber` as a number.
    pub severity_number: i32,
    /// The severity as the source wrote it.
    pub severity_text: &'a str,
    /// The body.
    pub body: Value<'a>,
    /// The record's attributes.
    pub attributes: Attributes<'a>,
    /// W3C trace flags.
    pub flags: u32,
    /// Empty, or 16 bytes.
    pub trace_id: &'a [u8],
    /// Empty, or 8 bytes.
    pub span_id: &'a [u8],
    /// The event's name, for event records.
    pub event_name: &'a str,
}

impl<'a> Message<'a> for LogRecord<'a> {
    #[inline]
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "LogRecord";
        let mut record = LogRecord::default();
        let mut attributes = Stretch::default();
        for_each_field_with_run(bytes, 6, |tag, field, start, end| {
            match tag {
                1 => record.time_unix_nano = field.fixed64((AT, "time_unix_nano"))?,
                2 => record.severity_number = field.int32((AT, "severity_number"))?,
                3 => record.severity_text = field.string((AT, "severity_text"))?,
                5 => record.body = Value::parse(field.bytes((AT, "body"))?)?,
                6 => note(&mut attributes, field, start, end, (AT, "attributes"))?,
                7 => {
                    field.varint((AT, "dropped_attributes_count"))?;
                }
                8 => record.flags = field.fixed32((AT, "flags"))?,
                9 => record.trace_id = field.bytes((AT, "trace_id"))?,
                10 => record.span_id = field.bytes((AT, "span_id"))?,
                11 => {
                    record.observed_time_unix_nano =
                        field.fixed64((AT, "observed_time_unix_nano"))?
                }
                12 => record.event_name = field.string((AT, "event_name"))?,
                _ => {}
            }
            Ok(())
        })?;
        record.attributes = Attributes::Wire(Repeated::new(bytes, attributes, 6));
        Ok(record)
    }

    fn validate(&self) -> Result<(), WireError> {
        self.body.validate()?;
        self.attributes.validate()
    }
}

/// What labelling reads of a log record: its trace, flags and attributes.
/// The rest (the body above all) is skipped unread; the converter reads
/// and checks it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogRecordLabel<'a> {
    /// The record's attributes.
    pub attributes: Attributes<'a>,
    /// W3C trace flags.
    pub flags: u32,
    /// Empty, or 16 bytes.
    pub trace_id: &'a [u8],
}

impl<'a> Message<'a> for LogRecordLabel<'a> {
    #[inline]
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const AT: &str = "LogRecord";
        let mut record = LogRecordLabel::default();
        let mut attributes = Stretch::default();
        for_each_field_with_run(bytes, 6, |tag, field, start, end| {
            match tag {
                6 => note(&mut attributes, field, start, end, (AT, "attributes"))?,
                8 => record.flags = field.fixed32((AT, "flags"))?,
                9 => record.trace_id = field.bytes((AT, "trace_id"))?,
                _ => {}
            }
            Ok(())
        })?;
        record.attributes = Attributes::Wire(Repeated::new(bytes, attributes, 6));
        Ok(record)
    }

    fn validate(&self) -> Result<(), WireError> {
        self.attributes.validate()
    }
}
