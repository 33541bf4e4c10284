//! What a resource and a scope contribute to each of their records.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::attributes::{find, value_text};

/// The service name OpenTelemetry SDKs report when none was configured.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// A resource, with the fields every record copies out of it.
pub(crate) struct ResourceInfo<'a> {
    pub(crate) attributes: &'a [KeyValue],
    pub(crate) service: Cow<'a, str>,
    pub(crate) version: Option<String>,
}

impl<'a> ResourceInfo<'a> {
    pub(crate) fn new(resource: Option<&'a Resource>) -> Self {
        let attributes = resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let mut scratch = String::new();
        let service = match value_text(find(attributes, "service.name"), &mut scratch) {
            Some(name) if !name.is_empty() => Cow::Owned(name.to_owned()),
            _ => Cow::Borrowed(UNKNOWN_SERVICE),
        };
        let version = value_text(find(attributes, "service.version"), &mut scratch)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        ResourceInfo {
            attributes,
            service,
            version,
        }
    }
}

/// An instrumentation scope.
pub(crate) struct ScopeInfo<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) version: Option<&'a str>,
    pub(crate) attributes: &'a [KeyValue],
}

impl<'a> ScopeInfo<'a> {
    pub(crate) fn new(scope: Option<&'a InstrumentationScope>) -> Self {
        let non_empty = |s: &'a String| Some(s.as_str()).filter(|s| !s.is_empty());
        ScopeInfo {
            name: scope.and_then(|s| non_empty(&s.name)),
            version: scope.and_then(|s| non_empty(&s.version)),
            attributes: scope.map(|s| s.attributes.as_slice()).unwrap_or_default(),
        }
    }
}
