//! What the benchmark shares with the crash suite (`tests/crash`): the real binary started as
//! an operator starts it, and the demo seed it is set up from; and with its `raw_probe`
//! example: the raw baselines' statements.

pub mod raw;
pub mod seed;
pub mod server;
