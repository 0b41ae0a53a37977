//! Query parameters, parsed once at the edge: only known keys, only valid values.

use super::reply::ApiError;

/// Query parameters of a resource route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    pub force: bool,
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(ApiError::BadRequest(format!(
            "{key} must be true or false, got {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

impl ResourceQuery {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut q = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "force" => q.force = parse_bool(key, value)?,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown query parameter {:?} (allowed: force)",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn force_accepts_booleans_only() {
        assert!(
            ResourceQuery::parse(&pairs(&[("force", "true")]))
                .unwrap()
                .force
        );
        assert!(!ResourceQuery::parse(&pairs(&[])).unwrap().force);
        assert!(ResourceQuery::parse(&pairs(&[("force", "yes please")])).is_err());
        assert!(ResourceQuery::parse(&pairs(&[("forse", "true")])).is_err());
    }
}
