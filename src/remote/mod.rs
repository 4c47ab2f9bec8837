//! Prometheus Remote-Write: the receiver of pushes (with HA election of one replica per
//! cluster), its wire format, and the sender's durable queue.
//!
//! - [`decode`]: snappy + `WriteRequest` decoding with limits and the spec's validation;
//! - [`proto`]: the prost structs of Remote-Write 1.0 (encoding, reference decoding);
//! - [`ha`]: the HA tracker electing one replica per cluster, Mimir style;
//! - [`receive`]: `POST /api/v1/write`;
//! - [`queue`]: the durable on-disk queue of one Remote-Write destination.

pub mod decode;
pub mod ha;
pub mod proto;
pub mod queue;
pub mod receive;
