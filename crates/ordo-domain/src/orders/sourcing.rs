//! Sourcing: choosing fulfillment nodes for an order (in progress).
