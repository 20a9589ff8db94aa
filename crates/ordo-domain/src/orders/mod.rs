//! Order orchestration (issue #3): the canonical order, its state machine and hold codes,
//! validation into holds and the exception queue, and sourcing. Capture, reservation by
//! priority and the engine commands build on these.

pub mod allocation;
pub mod book;
pub mod fulfilment;
pub mod lifecycle;
pub mod model;
pub mod sourcing;
pub mod validation;
pub mod waves;
