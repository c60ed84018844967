//! # headwater-contracts
//!
//! The contract of a stream: a schema (JSON Schema, draft-07 or 2020-12, or Avro), its versions
//! and the compatibility rules between them, with Confluent Schema Registry's semantics. A change
//! that breaks a mode is refused with one [`Incompatibility`] per problem, naming the field and
//! the rule, for example
//! `field 'amount': type number -> string breaks BACKWARD (the new schema cannot read data written with version 3)`.
//!
//! It owns schema parsing and compatibility. It does not know the network, the log or domains;
//! record validation and the registry's state build on it.
//!
//! ```
//! use headwater_contracts::{check, Compatibility, Contract, Format};
//! let v1 = Contract::parse(Format::JsonSchema, r#"{"type":"object","properties":{"amount":{"type":"number"}}}"#).unwrap();
//! let v2 = Contract::parse(Format::JsonSchema, r#"{"type":"object","properties":{"amount":{"type":"string"}}}"#).unwrap();
//! let problems = check(Compatibility::Backward, &v2, &[(1, &v1)]);
//! assert_eq!(problems[0].to_string(),
//!     "field 'amount': type number -> string breaks BACKWARD (the new schema cannot read data written with version 1)");
//! ```

mod avro;
mod avro_check;
mod compatibility;
mod contract;
mod json_check;
mod json_schema;
pub mod registry;
pub mod validate;

pub use compatibility::{check, Compatibility, Incompatibility};
pub use contract::{Contract, ContractError, Format};
