//! Validated configuration.

use crate::error::ConfigError;

/// When the log makes accepted records durable on its own. Whatever the
/// policy, [`Log::sync`](crate::Log::sync) makes everything accepted so far
/// durable.
///
/// In a configuration file (feature `serde`): `"manual"`, `"always"`,
/// `{ "every_records": 100 }`, `{ "every_millis": "1s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum SyncPolicy {
    /// Only an explicit `sync` (or `close`) makes records durable.
    Manual,
    /// Sync after every append call (a batch counts as one call).
    Always,
    /// Sync once this many records have been accepted since the last sync.
    EveryRecords(u64),
    /// Sync on an append made this many milliseconds (by the log's clock)
    /// or more after the last sync (or the open): Kafka's `flush.ms`. The
    /// log has no thread of its own, so an idle log keeps its unsynced
    /// records until the next append, [`Log::sync`](crate::Log::sync),
    /// `close`, or a timer of the application's that calls
    /// [`Log::sync_if_due`](crate::Log::sync_if_due).
    EveryMillis(#[cfg_attr(feature = "serde", serde(with = "crate::units::millis"))] u64),
}

/// Log configuration. Build it from [`Config::default`] and adjust fields;
/// [`Config::validate`] (called by `open`) rejects nonsense with a message.
///
/// With the `serde` feature it reads from a configuration file: fields
/// left out keep their defaults, unknown fields are an error, byte sizes
/// may be written `"64 MiB"` and durations (the `*_ms` fields) `"7d"` or
/// `"250ms"` (plain integers are bytes and milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct Config {
    /// Roll to a new segment before a batch would make the active segment
    /// larger than this many bytes. A batch never spans segments, so a single
    /// larger batch (or record) gets a segment of its own.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::bytes"))]
    pub segment_bytes_max: u64,
    /// Roll to a new segment once the active one holds this many records.
    pub segment_records_max: u64,
    /// Roll to a new segment once the active one was created this many
    /// milliseconds ago (by the log's clock); `None` never rolls by age.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::opt_millis"))]
    pub segment_age_ms_max: Option<u64>,
    /// Add a sparse index entry every this many bytes of records.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::bytes_u32"))]
    pub index_interval_bytes: u32,
    /// Largest accepted record (key plus value) in bytes.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::bytes_u32"))]
    pub record_bytes_max: u32,
    /// Bytes of accepted records kept in memory before they are written to
    /// the file (they are readable from memory meanwhile).
    #[cfg_attr(feature = "serde", serde(with = "crate::units::bytes_u32"))]
    pub write_buffer_bytes: u32,
    /// When the log syncs on its own.
    pub sync: SyncPolicy,
    /// Retention: delete the oldest sealed segments while the log is larger
    /// than this many bytes (applied after every roll and by
    /// `Log::apply_retention`); `None` keeps everything.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::opt_bytes"))]
    pub retention_bytes: Option<u64>,
    /// Retention: delete the oldest sealed segments whose newest record is
    /// older than this many milliseconds (by record timestamps); `None`
    /// keeps everything.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::opt_millis"))]
    pub retention_age_ms: Option<u64>,
    /// Key compaction keeps a tombstone until this many milliseconds after
    /// its own timestamp (durable in the record, so the horizon survives
    /// restarts and rewrites), so that readers behind by less than this see
    /// the deletion; then it is dropped (with every older record of its
    /// key, which the tombstone superseded).
    #[cfg_attr(feature = "serde", serde(with = "crate::units::millis"))]
    pub tombstone_retention_ms: u64,
    /// Memory budget of key compaction's key map, in bytes (each distinct
    /// key costs its length plus about 64 bytes). When a log's keys do not
    /// fit, compaction works in several passes.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::bytes"))]
    pub compaction_map_bytes: u64,
}

/// Upper bound on `segment_bytes_max`: segment scans at recovery read at most
/// this much, and positions inside a segment stay far from any overflow.
pub const SEGMENT_BYTES_LIMIT: u64 = 1 << 34;
/// Upper bound on `record_bytes_max`.
pub const RECORD_BYTES_LIMIT: u32 = 1 << 30;

impl Default for Config {
    fn default() -> Self {
        Self {
            segment_bytes_max: 64 << 20,
            segment_records_max: 1 << 32,
            segment_age_ms_max: None,
            index_interval_bytes: 4096,
            record_bytes_max: 16 << 20,
            write_buffer_bytes: 256 << 10,
            sync: SyncPolicy::Manual,
            retention_bytes: None,
            retention_age_ms: None,
            tombstone_retention_ms: 24 * 3600 * 1000,
            compaction_map_bytes: 64 << 20,
        }
    }
}

impl Config {
    /// Checks every field; the error names the field and the allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, msg: String) -> Result<(), ConfigError> {
            Err(ConfigError { field, msg })
        }
        let min_segment = 4096;
        if !(min_segment..=SEGMENT_BYTES_LIMIT).contains(&self.segment_bytes_max) {
            return bad(
                "segment_bytes_max",
                format!("is {}, must be between {min_segment} and {SEGMENT_BYTES_LIMIT}", self.segment_bytes_max),
            );
        }
        if self.segment_records_max == 0 {
            return bad("segment_records_max", "is 0, must be at least 1".into());
        }
        if self.segment_age_ms_max == Some(0) {
            return bad(
                "segment_age_ms_max",
                "is Some(0), must be at least 1 ms (or None to never roll by age)".into(),
            );
        }
        if !(64..=(1 << 24)).contains(&self.index_interval_bytes) {
            return bad(
                "index_interval_bytes",
                format!("is {}, must be between 64 and 16777216", self.index_interval_bytes),
            );
        }
        if !(1..=RECORD_BYTES_LIMIT).contains(&self.record_bytes_max) {
            return bad(
                "record_bytes_max",
                format!("is {}, must be between 1 and {RECORD_BYTES_LIMIT}", self.record_bytes_max),
            );
        }
        if !(4096..=(1 << 30)).contains(&self.write_buffer_bytes) {
            return bad(
                "write_buffer_bytes",
                format!("is {}, must be between 4096 and 1073741824", self.write_buffer_bytes),
            );
        }
        if self.compaction_map_bytes < 4096 {
            return bad(
                "compaction_map_bytes",
                format!("is {}, must be at least 4096 (one pass needs room for keys)", self.compaction_map_bytes),
            );
        }
        if self.sync == SyncPolicy::EveryRecords(0) {
            return bad("sync", "is EveryRecords(0), must be at least 1".into());
        }
        if self.sync == SyncPolicy::EveryMillis(0) {
            return bad(
                "sync",
                "is EveryMillis(0), must be at least 1 ms (SyncPolicy::Always syncs every append)".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, Config)> = vec![
            ("segment_bytes_max", Config { segment_bytes_max: 10, ..Config::default() }),
            ("segment_records_max", Config { segment_records_max: 0, ..Config::default() }),
            ("segment_age_ms_max", Config { segment_age_ms_max: Some(0), ..Config::default() }),
            ("index_interval_bytes", Config { index_interval_bytes: 1, ..Config::default() }),
            ("record_bytes_max", Config { record_bytes_max: 0, ..Config::default() }),
            ("write_buffer_bytes", Config { write_buffer_bytes: 1, ..Config::default() }),
            ("sync", Config { sync: SyncPolicy::EveryRecords(0), ..Config::default() }),
            ("sync", Config { sync: SyncPolicy::EveryMillis(0), ..Config::default() }),
        ];
        for (field, cfg) in cases {
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}
