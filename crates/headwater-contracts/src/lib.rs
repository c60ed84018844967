//! # headwater-contracts
//!
//! The contract of a stream: a schema (JSON Schema, draft-07 or 2020-12, or Avro), its versions
//! and the compatibility rules between them, with Confluent Schema Registry's semantics; and the
//! check of each produced record against its contract and the stream's quality rules (CEL).
//!
//! It owns, with no I/O of its own:
//!
//! - parsing a schema text into a [`Contract`], and encoding or decoding a value with it
//!   ([`Contract::encode_json`], [`Contract::decode_json`]);
//! - compatibility: [`check`] refuses a change that breaks a [`Compatibility`] mode with one
//!   [`Incompatibility`] per problem, naming the field and the rule, for example
//!   `field 'amount': type number -> string breaks BACKWARD (the new schema cannot read data written with version 3)`;
//! - record validation: [`validate::RecordValidator`], compiled once per schema version and
//!   stream, checks a record's bytes against the schema and the rules;
//! - the registry's state: [`registry::Registry`], changed only by [`registry::RegistryEvent`]s.
//!
//! It does not know the network, the log or domains: the node stores registry events in
//! `_headwater.schemas` and replays them, the contract gate on the produce path strips the
//! framing and calls the validator, and manifests name the schemas and rules.
//!
//! ```
//! use headwater_contracts::{check, Compatibility, Contract, Format};
//! let v1 = Contract::parse(Format::JsonSchema, r#"{"type":"object","properties":{"amount":{"type":"number"}}}"#).unwrap();
//! let v2 = Contract::parse(Format::JsonSchema, r#"{"type":"object","properties":{"amount":{"type":"string"}}}"#).unwrap();
//! let problems = check(Compatibility::Backward, &v2, &[(1, &v1)]);
//! assert_eq!(problems[0].to_string(),
//!     "field 'amount': type number -> string breaks BACKWARD (the new schema cannot read data written with version 1)");
//! ```
//!
//! ## Layout
//!
//! | file | holds |
//! |---|---|
//! | `contract.rs` | [`Format`], [`Contract`] (parse, the fields the catalog lists), [`ContractError`] |
//! | `codec.rs` | a value in a contract's wire form: [`EncodeError`], [`DecodeError`] |
//! | `compatibility/mod.rs` | [`Compatibility`], [`check`], [`Incompatibility`] |
//! | `compatibility/{json_schema,avro}.rs` | can a reader schema read a writer's data, per format |
//! | `validate/mod.rs` | [`validate::RecordValidator`], [`validate::Invalid`] |
//! | `validate/framing.rs` | [`validate::Framing`]: Confluent's magic byte and schema id |
//! | `validate/rules.rs` | quality rules (CEL) |
//! | `validate/{json_compile,json_read,avro}.rs` | one-pass checks of a record's bytes |
//! | `registry.rs` | [`registry::Registry`], its events and Confluent's error codes |
//!
//! ## A new contract format
//!
//! Say Protobuf: a [`Format`] variant and its arm in [`Contract::parse`] (`contract.rs`) and
//! [`Contract::fields`]; its wire form in `codec.rs`; `compatibility/protobuf.rs` with a
//! `can_read(reader, writer)` and its arm in `compatibility/mod.rs`. Validation then works
//! through the codec's full decode; a one-pass reader (`validate/protobuf.rs`) is only worth
//! adding when a benchmark says so. The registry needs nothing.

mod codec;
mod compatibility;
mod contract;
pub mod registry;
pub mod validate;

pub use codec::{DecodeError, EncodeError};
pub use compatibility::{check, Compatibility, Direction, Incompatibility};
pub use contract::{Contract, ContractError, Format};
