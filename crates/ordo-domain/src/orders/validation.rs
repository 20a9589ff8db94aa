//! Order validation rules producing hold codes, and the exception queue order (in progress).
