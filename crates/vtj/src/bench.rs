//! The throughput benchmark of VT-13 / PL-14.
