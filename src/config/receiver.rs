//! The Remote-Write receiver's checked settings: the decoder's limits and the HA tracker's
//! timings ([`crate::remote`] applies them).

/// Limits applied while decoding; the body-size limit is the receiver's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest decompressed protobuf accepted (checked from the snappy header, before
    /// decompressing).
    pub max_decoded_bytes: usize,
    /// Largest number of labels in one series (`__name__` included).
    pub max_labels_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Mimir's defaults for names, values and label count; 64 MiB decoded is 16× what
        // Prometheus sends at most (`max_samples_per_send` 500 → about 100 KB).
        Limits {
            max_decoded_bytes: 64 << 20,
            max_labels_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
        }
    }
}

/// How the tracker elects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaSettings {
    pub update_timeout_ms: i64,
    pub failover_timeout_ms: i64,
    pub max_clusters: usize,
    pub forget_after_ms: i64,
}

impl Default for HaSettings {
    fn default() -> Self {
        HaSettings {
            update_timeout_ms: 15_000,
            failover_timeout_ms: 30_000,
            max_clusters: 1000,
            forget_after_ms: 1_800_000,
        }
    }
}
