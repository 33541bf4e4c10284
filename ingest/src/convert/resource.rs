//! What a resource and a scope contribute to each of their records.

use std::borrow::Cow;

use super::attributes::{AttributeBlock, attribute_block, find, read_attributes, value_text};
use crate::wire::{Resource, Scope, WireError};

/// The service name OpenTelemetry SDKs report when none was configured.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// A resource, with the fields every record copies out of it (its
/// attributes read and rendered once for all of its records).
pub(crate) struct ResourceInfo<'a> {
    pub(crate) attributes: AttributeBlock,
    pub(crate) service: Cow<'a, str>,
    pub(crate) version: Option<String>,
}

impl<'a> ResourceInfo<'a> {
    pub(crate) fn new(resource: Resource<'a>) -> Result<Self, WireError> {
        let mut attributes = Vec::new();
        read_attributes(resource.attributes, &mut attributes)?;
        let mut scratch = String::new();
        let service = match value_text(find(&attributes, "service.name"), &mut scratch) {
            Some(name) if !name.is_empty() => Cow::Owned(name.to_owned()),
            _ => Cow::Borrowed(UNKNOWN_SERVICE),
        };
        let version = value_text(find(&attributes, "service.version"), &mut scratch)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        Ok(ResourceInfo {
            attributes: attribute_block(&attributes, &mut scratch),
            service,
            version,
        })
    }
}

/// An instrumentation scope.
pub(crate) struct ScopeInfo<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) version: Option<&'a str>,
    pub(crate) attributes: AttributeBlock,
}

impl<'a> ScopeInfo<'a> {
    pub(crate) fn new(scope: Scope<'a>) -> Result<Self, WireError> {
        let non_empty = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        let mut attributes = Vec::new();
        read_attributes(scope.attributes, &mut attributes)?;
        Ok(ScopeInfo {
            name: non_empty(scope.name),
            version: non_empty(scope.version),
            attributes: attribute_block(&attributes, &mut String::new()),
        })
    }
}
