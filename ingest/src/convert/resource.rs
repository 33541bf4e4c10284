//! What a resource and a scope contribute to each of their records.

use std::borrow::Cow;

use super::attributes::{find, value_text};
use crate::wire::{KeyValue, Resource, Scope};

/// The service name OpenTelemetry SDKs report when none was configured.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// A resource, with the fields every record copies out of it (its
/// attributes read once for all of its records).
pub(crate) struct ResourceInfo<'a> {
    pub(crate) attributes: Vec<KeyValue<'a>>,
    pub(crate) service: Cow<'a, str>,
    pub(crate) version: Option<String>,
}

impl<'a> ResourceInfo<'a> {
    pub(crate) fn new(resource: Resource<'a>) -> Self {
        let attributes: Vec<KeyValue<'a>> = resource.attributes.iter().collect();
        let mut scratch = String::new();
        let service = match value_text(find(&attributes, "service.name"), &mut scratch) {
            Some(name) if !name.is_empty() => Cow::Owned(name.to_owned()),
            _ => Cow::Borrowed(UNKNOWN_SERVICE),
        };
        let version = value_text(find(&attributes, "service.version"), &mut scratch)
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
    pub(crate) attributes: Vec<KeyValue<'a>>,
}

impl<'a> ScopeInfo<'a> {
    pub(crate) fn new(scope: Scope<'a>) -> Self {
        let non_empty = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        ScopeInfo {
            name: non_empty(scope.name),
            version: non_empty(scope.version),
            attributes: scope.attributes.iter().collect(),
        }
    }
}
