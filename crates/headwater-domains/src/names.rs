//! The one grammar of the names a manifest gives: domains, streams, pipelines, tables and
//! views. They become topic names (`<domain>.<stream>`), consumer group names and directories
//! under the node's data dir, so the grammar keeps every one of them away from what the node
//! keeps for itself (names starting with `_`, like `_headwater.audit` and `_pipeline.*`
//! groups), from dots that would make one topic name read as another, and from path
//! separators and `..`.

use crate::NameError;

/// The longest name: a domain and a stream name joined stay under Kafka's 249-character
/// topic limit, with room for the `.dlq` suffix.
pub const MAX_NAME: usize = 120;

/// Checks a name: ASCII letters, digits, `_` and `-`, starting with a letter or a digit, at
/// most [`MAX_NAME`] characters.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty);
    };
    if !first.is_ascii_alphanumeric() {
        return Err(NameError::Start { found: first });
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(NameError::Character { found });
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong {
            length: name.len(),
            max: MAX_NAME,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_node_keeps_or_that_reach_elsewhere_are_refused() {
        for bad in [
            "",
            "_pipeline",
            "_headwater",
            "-x",
            "a.b",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "ä",
            "a b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
        for good in [
            "payments",
            "transaction_settled",
            "ml-features",
            "v2",
            "a_b-c",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
    }
}
