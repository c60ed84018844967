//! How a record value names the schema it was written with.
//!
//! Confluent's wire format puts a magic byte `0` and the schema id (4 bytes, big-endian) before
//! the encoded value. JSON text never starts with byte `0`, so anything else is read as plain
//! JSON, which a JSON Schema stream accepts and checks against its latest version.

/// How a record's value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Magic byte 0 and a 4-byte big-endian schema id, then the encoded value.
    Confluent {
        /// The registry's global id of the schema the value was written with.
        schema_id: u32,
    },
    /// Plain JSON text (JSON Schema streams only), checked against the latest version.
    PlainJson,
}

/// Reads the framing of a record value. A value of fewer than five bytes is never Confluent
/// framed.
pub fn framing(value: &[u8]) -> Framing {
    match value {
        [0, a, b, c, d, ..] => Framing::Confluent {
            schema_id: u32::from_be_bytes([*a, *b, *c, *d]),
        },
        _ => Framing::PlainJson,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_byte_and_id_make_confluent_framing() {
        assert_eq!(
            framing(&[0, 0, 0, 0, 7, 1]),
            Framing::Confluent { schema_id: 7 }
        );
        assert_eq!(
            framing(&[0, 1, 0, 0, 0]),
            Framing::Confluent { schema_id: 1 << 24 },
            "an empty payload after the id is still framed"
        );
        assert_eq!(framing(b"{}"), Framing::PlainJson);
        assert_eq!(framing(&[0, 0, 0, 7]), Framing::PlainJson, "too short");
        assert_eq!(framing(b""), Framing::PlainJson);
    }
}
