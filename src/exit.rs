//! Process exit codes. CI keys off these, so they are part of the interface and documented in
//! the README.

/// Every gate passed (or had nothing to judge, such as a shape without a baseline).
pub const PASS: u8 = 0;
/// At least one kernel failed a gate: regressed, incorrect or errored.
pub const GATE_FAILED: u8 = 1;
/// Usage, configuration or environment error: nothing was judged.
pub const USAGE_OR_ENVIRONMENT: u8 = 2;
