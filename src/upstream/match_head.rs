//! Parses an OpenDota match body into only the fields the pipeline reads (its "head"), as a
//! small `serde_json::Value`, skipping the rest as it goes. A parsed match is ~300 KB of JSON
//! (per-minute gold, purchase logs, chat, for ten players); a whole `Value` tree of it is
//! several times that, and a team import parses dozens at once on the blocking pool, where
//! glibc's per-thread arenas keep what was freed (BENCHMARKS.md "Scale and cost"). The head is
//! a few hundred bytes. The whole body is still checked to be JSON: skipped values are
//! scanned, not trusted, so a cut or garbled body fails here exactly as a full parse would.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Top-level fields of a match kept in its head: what the checks ([`super::opendota`]), the
/// fan-out and the team-view summary (`crate::team::summary`) read, and `error` (OpenDota's
/// "invalid id" answer).
pub const MATCH_FIELDS: &[&str] = &[
    "match_id",
    "error",
    "radiant_team_id",
    "dire_team_id",
    "radiant_name",
    "dire_name",
    "radiant_score",
    "dire_score",
    "radiant_win",
    "duration",
    "start_time",
];

/// Fields kept of each entry of `players`.
pub const PLAYER_FIELDS: &[&str] = &["account_id", "player_slot", "isRadiant"];

/// The head of a match body: an object with the [`MATCH_FIELDS`] it has and `players` as an
/// array of objects with the [`PLAYER_FIELDS`] each has. A body that is JSON but not an object
/// gives `Value::Null`; `players` that is not an array is kept as `null`, entries that are not
/// objects as `null` (readers treat both as "no players", as they did the whole value).
pub fn parse(raw: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let head = Pick::MATCH.deserialize(&mut de)?;
    de.end()?;
    Ok(head)
}

/// Which fields of an object to keep, and one field whose array entries are picked in turn.
#[derive(Clone, Copy)]
struct Pick {
    fields: &'static [&'static str],
    each: Option<(&'static str, &'static Pick)>,
}

impl Pick {
    const PLAYER: Pick = Pick {
        fields: PLAYER_FIELDS,
        each: None,
    };
    const MATCH: Pick = Pick {
        fields: MATCH_FIELDS,
        each: Some(("players", &Pick::PLAYER)),
    };
}

impl<'de> DeserializeSeed<'de> for Pick {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

/// Anything but an object is `null`; its content is scanned and dropped.
impl<'de> Visitor<'de> for Pick {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key>()? {
            let key = key.0;
            if self.fields.contains(&key.as_str()) {
                out.insert(key, map.next_value::<Value>()?);
            } else if let Some((name, pick)) = self.each.filter(|(name, _)| *name == key) {
                out.insert(name.to_string(), map.next_value_seed(Each(*pick))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// An object key. Owned: a key with escapes cannot be borrowed from the body, and the keys
/// read are short.
struct Key(String);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        String::deserialize(de).map(Key)
    }
}

/// An array whose entries are each picked with the inner [`Pick`]; anything else is `null`.
struct Each(Pick);

impl<'de> DeserializeSeed<'de> for Each {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Each {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = seq.next_element_seed(self.0)? {
            out.push(entry);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_head_keeps_the_read_fields_and_each_players_side_and_nothing_else() {
        let body = json!({
            "match_id": 7, "radiant_team_id": 9, "dire_name": "D", "radiant_win": true,
            "gold_t": [1, 2, 3], "chat": [{"key": "gg"}], "objectives": {"x": [null]},
            "players": [
                {"account_id": 1, "player_slot": 0, "purchase_log": [{"key": "tango"}]},
                {"account_id": null, "isRadiant": false, "gold_t": [5]},
                3,
            ],
        });
        let head = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            head,
            json!({
                "match_id": 7, "radiant_team_id": 9, "dire_name": "D", "radiant_win": true,
                "players": [
                    {"account_id": 1, "player_slot": 0},
                    {"account_id": null, "isRadiant": false},
                    null,
                ],
            })
        );
    }

    #[test]
    fn other_shapes_are_null_and_broken_json_fails_as_a_full_parse_does() {
        assert_eq!(parse(br#"[1, {"match_id": 7}]"#).unwrap(), Value::Null);
        assert_eq!(parse(b"\"x\"").unwrap(), Value::Null);
        assert_eq!(
            parse(br#"{"players": {"account_id": 1}}"#).unwrap(),
            json!({"players": null})
        );
        assert_eq!(
            parse(br#"{"error": "Invalid match id"}"#).unwrap(),
            json!({"error": "Invalid match id"})
        );
        // A body cut inside a skipped field is still a truncated body.
        let cut = br#"{"match_id": 7, "gold_t": [1, 2"#;
        assert!(parse(cut).unwrap_err().is_eof());
        // Garbage inside a skipped field, and after the object, is still not JSON.
        assert!(parse(br#"{"match_id": 7, "chat": [tango]}"#).is_err());
        assert!(parse(br#"{"match_id": 7} trailing"#).is_err());
        // Keys with escapes are read.
        assert_eq!(
            parse(br#"{"match\u005fid": 7}"#).unwrap(),
            json!({"match_id": 7})
        );
    }
}
