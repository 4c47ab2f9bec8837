//! The HA merge: per group, which replica's sample each series shows, published as immutable
//! snapshots that readers load without ever waiting for the scraper.
//!
//! - [`group`]: the merge rules of one group (pure, clock passed in);
//! - [`arena`]: where a group keeps its series' label values;
//! - [`pins`]: the operator's leader pins, kept in `data_dir` across restarts;
//! - [`store`]: the task that owns every group, applies scrape outcomes and operator commands,
//!   and publishes a [`Snapshot`].

pub mod arena;
pub mod group;
pub mod pins;
pub mod snapshot;
pub mod store;

pub use group::push::Push;
pub use group::{
    CommandError, Emitted, Group, GroupSettings, GroupStatus, Last, Outcome, ReplicaSpec, Role, STALE_NAN_BITS,
    SnapEntry, TextEntry, counter_offset, is_stale_marker,
};
pub use snapshot::{GroupSnapshot, Served, Snapshot};
pub use store::{Command, Store, StoreHandle};
