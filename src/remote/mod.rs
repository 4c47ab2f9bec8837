//! Prometheus Remote-Write: the receiver of pushes (with HA election of one replica per
//! cluster) and its wire format.
//!
//! - [`decode`]: snappy + `WriteRequest` decoding with limits and the spec's validation;
//! - [`proto`]: the prost structs of Remote-Write 1.0 (encoding, reference decoding);
//! - [`ha`]: the HA tracker electing one replica per cluster, Mimir style;
//! - [`receive`]: `POST /api/v1/write`.

pub mod decode;
pub mod ha;
pub mod proto;
pub mod receive;
