//! # headwater-domains
//!
//! Domain manifests: one YAML file per domain declaring its owners, its streams (each with a
//! versioned contract, quality rules in CEL, classification, freshness and readers) and its
//! pipelines. [`load_dir`] reads every manifest of a directory and checks them together, and
//! [`load_bundle`] does the same for the files a client sends a node ([`Bundle`]); every
//! problem is a [`ManifestError`] naming the file, line and column, what is wrong and the fix.
//!
//! It also owns the audit trail's entry format and hash chain ([`audit`]).
//!
//! It owns the manifest format and its validation. It does not talk to a node: plan/apply, the
//! registry and produce-time validation build on what it loads. The format is documented in
//! `docs/manifests.md`.

mod applied;
pub mod audit;
mod duration;
mod error;
mod files;
mod load;
mod manifest;
mod names;
mod pipeline_checks;
pub mod policy;
mod spec;

pub use applied::AppliedDomains;
pub use duration::HumanDuration;
pub use error::{DurationError, ManifestError, NameError, OutputError};
pub use files::{Bundle, MAX_BUNDLE_FILES};
pub use load::{load_bundle, load_dir, LoadedDomain, LoadedStream};
pub use manifest::{
    Aggregation, ContractSpec, FeatureSpec, Governance, Manifest, OnInvalid, OutputSpec,
    PipelineMode, PipelineSpec, QualityRule, QualitySpec, StreamSpec, WindowSpec,
};
pub use names::{check_name, MAX_NAME};
pub use pipeline_checks::{refuse_input, Output};
pub use policy::{AccessPolicy, Denied, TopicOp};
pub use spec::{DomainSpec, ManagedSetting, StreamDef};
