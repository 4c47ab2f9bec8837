//! Prometheus Remote-Write: the receiver of pushes (with HA election of one replica per
//! cluster), the sender of the merged stream, and the wire format.
//!
//! - [`decode`]: snappy + `WriteRequest` decoding with limits and the spec's validation;
//! - [`proto`]: the prost structs of Remote-Write 1.0 (encoding, reference decoding);
//! - [`ha`]: the HA tracker electing one replica per cluster, Mimir style;
//! - [`receive`]: `POST /api/v1/write`;
//! - [`encode`]: `TimeSeries` written straight into a buffer, and found again;
//! - [`queue`]: the durable on-disk queue of one destination;
//! - [`send`]: one `remote_write` destination: queue, shards, retries;
//! - [`metadata`]: the metric families' types a destination is sent (`metadata_config`);
//! - [`senders`]: the running destinations, changed by a reload.

pub mod decode;
pub mod encode;
pub mod ha;
pub mod metadata;
pub mod proto;
pub mod queue;
pub mod receive;
pub mod send;
pub mod senders;
