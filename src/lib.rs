//! gatekeeper: a CI gate that stops GPU-kernel correctness and performance regressions before
//! they merge.
//!
//! The modules follow the pipeline: [`config`] → [`plan`] → [`measure`] → [`compare`] (with
//! [`stats`] and the [`baseline`] store) → [`record`] → [`report`]. [`commands`] wires them.
//! [`shape`] and [`spec`] hold the vocabulary they share (a shape's parameters, the `cuda:` and
//! `profile:` blocks of a kernel); `tests/module_graph.rs` keeps the modules free of cycles.
//! [`ab`] holds the statistics of a same-runner A/B comparison (rounds of base and candidate
//! processes, a sequential t-interval on their log-ratios), [`rank`] those of ranking
//! candidates against an incumbent (geometric-mean speedups, racing, the elite).

pub mod ab;
pub mod atomic;
pub mod baseline;
pub mod commands;
pub mod compare;
pub mod config;
pub mod cuda;
pub mod error;
pub mod exit;
pub mod git;
pub mod history;
pub mod inputs;
pub mod measure;
pub mod output;
pub mod plan;
pub mod profile;
pub mod rank;
pub mod record;
pub mod report;
pub mod shape;
pub mod spec;
pub mod stats;
pub mod unique;
pub mod yaml;
