//! Feature `serde`: `Config` and `GroupConfig` from configuration files with
//! human units, defaults for what is left out, and errors that name the
//! field (`cargo test -p seglog-core --features serde --test config_file`; the
//! workspace test run turns the feature on through the `tests` package).
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use std::time::Duration;

use seglog_core::{Config, GroupConfig, SyncPolicy};

#[test]
fn a_toml_file_with_human_units() {
    let cfg: Config = toml::from_str(
        r#"
        segment_bytes_max = "64 MiB"
        write_buffer_bytes = "256 KiB"
        retention_bytes = "10 GiB"
        retention_age_ms = "7d"
        segment_age_ms_max = "1h 30m"
        tombstone_retention_ms = 60000
        sync = { every_millis = "1s" }
        "#,
    )
    .unwrap();
    assert_eq!(cfg.segment_bytes_max, 64 << 20);
    assert_eq!(cfg.write_buffer_bytes, 256 << 10);
    assert_eq!(cfg.retention_bytes, Some(10 << 30));
    assert_eq!(cfg.retention_age_ms, Some(7 * 24 * 3600 * 1000));
    assert_eq!(cfg.segment_age_ms_max, Some(90 * 60 * 1000));
    assert_eq!(cfg.tombstone_retention_ms, 60_000);
    assert_eq!(cfg.sync, SyncPolicy::EveryMillis(1000));
    // Left out: the defaults.
    assert_eq!(cfg.index_interval_bytes, Config::default().index_interval_bytes);
    assert_eq!(cfg.compaction_map_bytes, Config::default().compaction_map_bytes);
    cfg.validate().unwrap();
}

#[test]
fn every_sync_policy_reads_and_a_config_round_trips() {
    for (text, want) in [
        (r#"sync = "manual""#, SyncPolicy::Manual),
        (r#"sync = "always""#, SyncPolicy::Always),
        (r#"sync = { every_records = 100 }"#, SyncPolicy::EveryRecords(100)),
        (r#"sync = { every_millis = 250 }"#, SyncPolicy::EveryMillis(250)),
    ] {
        let cfg: Config = toml::from_str(text).unwrap();
        assert_eq!(cfg.sync, want, "{text}");
    }
    let odd = Config {
        segment_bytes_max: 4097,
        retention_age_ms: Some(1),
        retention_bytes: None,
        sync: SyncPolicy::EveryMillis(1500),
        ..Config::default()
    };
    let text = toml::to_string(&odd).unwrap();
    assert!(text.contains("segment_bytes_max = \"4097 B\""), "{text}");
    assert!(text.contains("write_buffer_bytes = \"256 KiB\""), "{text}");
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), odd, "{text}");
    let json = serde_json::to_string(&odd).unwrap();
    assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), odd, "{json}");
    assert_eq!(serde_json::from_str::<Config>("{}").unwrap(), Config::default());
}

#[test]
fn mistakes_are_errors_that_say_what_is_wrong() {
    let cases = [
        ("segment_bytes = 4096", "unknown field `segment_bytes`"),
        (r#"segment_bytes_max = "64 parsecs""#, "is not a byte size"),
        (r#"retention_age_ms = "a week""#, "is not a duration"),
        (r#"tombstone_retention_ms = "1500us""#, "not a whole number of milliseconds"),
        (r#"write_buffer_bytes = "8 GiB""#, "too large"),
        (r#"sync = "sometimes""#, "unknown variant `sometimes`"),
    ];
    for (text, want) in cases {
        let err = toml::from_str::<Config>(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    // Parsed but out of range: `validate` (and so `Log::open`) names it.
    let cfg: Config = toml::from_str(r#"segment_bytes_max = "1 KiB""#).unwrap();
    assert_eq!(cfg.validate().unwrap_err().field, "segment_bytes_max");
}

#[test]
fn group_config_reads_with_units() {
    let g: GroupConfig = toml::from_str(
        r#"
        batch_bytes_max = "4 MiB"
        queue_records_max = 1000
        linger = "2ms"
        "#,
    )
    .unwrap();
    assert_eq!(g.batch_bytes_max, 4 << 20);
    assert_eq!(g.queue_records_max, 1000);
    assert_eq!(g.linger, Duration::from_millis(2));
    assert_eq!(g.batch_records_max, GroupConfig::default().batch_records_max);
    assert_eq!(toml::from_str::<GroupConfig>(&toml::to_string(&g).unwrap()).unwrap(), g);
}
