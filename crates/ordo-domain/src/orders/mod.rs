//! Order orchestration (issue #3): the canonical order, its state machine and hold codes. The
//! capture, validation, reservation and sourcing steps build on these types.

pub mod lifecycle;
pub mod model;
