//! OpenAPI schemas of the domain types the API serialises by hand (IDs, signatures, kinds,
//! services). Their serde impls live in `crate::domain`; the schemas sit here, next to the rest
//! of the document, and take their values from the same constants (`ResourceKind::ALL`,
//! `Service::ALL`) so they cannot drift from what is serialised.

use std::borrow::Cow;

use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{LeagueId, MatchId, PlayerId, ResourceKind, Service, Signature, TeamId};

/// Pattern of every ID in paths, queries and bodies (see `domain::ids`).
pub const ID_PATTERN: &str = "^[1-9][0-9]{0,18}$";

/// `<kind>:<id>`, or `team:<teamId>:<leagueId>`.
const SIGNATURE_PATTERN: &str = "^((match|player|player-stats|league):[1-9][0-9]{0,18}|team:[1-9][0-9]{0,18}:[1-9][0-9]{0,18})$";

fn string_schema(pattern: &str, description: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([json!(example)])
        .into()
}

fn enum_schema<'a>(values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .into()
}

/// Every typed ID is one schema, `Id`: a decimal string (match IDs exceed JavaScript's safe
/// integers, so they are never JSON numbers).
macro_rules! id_schema {
    ($($id:ty),*) => {$(
        impl PartialSchema for $id {
            fn schema() -> RefOr<Schema> {
                string_schema(
                    ID_PATTERN,
                    "IDs are strings: match IDs exceed JavaScript's safe integers.",
                    "8054301932",
                )
            }
        }
        impl ToSchema for $id {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed("Id")
            }
        }
    )*};
}

id_schema!(MatchId, PlayerId, LeagueId, TeamId);

impl PartialSchema for Signature {
    fn schema() -> RefOr<Schema> {
        string_schema(
            SIGNATURE_PATTERN,
            "`<kind>:<id>`, or `team:<teamId>:<leagueId>`.",
            "match:8054301932",
        )
    }
}

impl ToSchema for Signature {}

impl PartialSchema for ResourceKind {
    fn schema() -> RefOr<Schema> {
        enum_schema(ResourceKind::ALL.map(ResourceKind::as_str))
    }
}

impl ToSchema for ResourceKind {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Kind")
    }
}

impl PartialSchema for Service {
    fn schema() -> RefOr<Schema> {
        enum_schema(Service::ALL.map(Service::as_str))
    }
}

impl ToSchema for Service {}
