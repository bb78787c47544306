//! Tracing spans carry offsets and byte counts as fields (issue "For
//! embedders and operators", item 7): `append` (debug level), `sync`,
//! `roll`, the recovery phases under `open`, and `compact`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use seglog_core::{Config, Entry, Log, SyncPolicy};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// A span's name and its fields.
type Seen = (String, BTreeMap<String, String>);

/// Every span seen: its name and its fields (recorded late ones included).
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut all = self.0.lock().unwrap();
        all.push((attrs.metadata().name().to_string(), fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(all.len() - 1);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(&i) = span.extensions().get::<usize>() else { return };
        let mut all = self.0.lock().unwrap();
        values.record(&mut Fields(&mut all[i].1));
    }
}

impl Spans {
    /// The fields of the last span named `name`.
    fn last(&self, name: &str) -> BTreeMap<String, String> {
        let all = self.0.lock().unwrap();
        all.iter().rev().find(|(n, _)| n == name).map(|(_, f)| f.clone()).unwrap_or_else(|| {
            panic!("no `{name}` span among {:?}", all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())
        })
    }
}

#[test]
fn spans_carry_offsets_and_byte_counts() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    tracing::subscriber::with_default(subscriber, || {
        let config = Config { sync: SyncPolicy::Manual, ..Config::default() };
        let mut log = Log::open(&dir, config.clone()).unwrap();
        log.append_batch(&[Entry::new(&[1; 100]).with_key(b"k"), Entry::new(&[2; 50]).with_key(b"k")]).unwrap();
        log.sync().unwrap();
        log.append(Entry::new(&[3; 10]).with_key(b"k")).unwrap();
        log.roll().unwrap();
        log.append(Entry::new(&[4; 10])).unwrap();
        log.roll().unwrap();
        log.compact().unwrap();
        drop(log);
        let log = Log::open(&dir, config).unwrap();
        assert_eq!(log.next_offset(), 4);
    });

    let append = spans.last("append");
    assert_eq!((append["first_offset"].as_str(), append["records"].as_str()), ("3", "1"));
    assert!(append["bytes"].parse::<u64>().unwrap() > 10, "{append:?}");
    let first_append = spans.0.lock().unwrap().iter().find(|(n, _)| n == "append").unwrap().1.clone();
    assert_eq!((first_append["first_offset"].as_str(), first_append["records"].as_str()), ("0", "2"));

    let sync = spans.0.lock().unwrap().iter().find(|(n, _)| n == "sync").unwrap().1.clone();
    assert_eq!((sync["from"].as_str(), sync["upto"].as_str()), ("0", "2"), "{sync:?}");
    assert!(sync["bytes"].parse::<u64>().unwrap() >= 150, "{sync:?}");

    let roll = spans.last("roll");
    assert_eq!(roll["next_offset"], "4");
    assert!(roll["sealed_bytes"].parse::<u64>().unwrap() > 0, "{roll:?}");

    let open = spans.last("open");
    assert_eq!((open["first_offset"].as_str(), open["next_offset"].as_str()), ("0", "4"), "{open:?}");
    assert!(open.contains_key("segments") && open.contains_key("bytes_scanned") && open.contains_key("torn_bytes"));
    assert!(spans.last("open_segments").contains_key("segments"));

    let compact = spans.last("compact");
    assert_eq!(compact["records_read"], "4", "{compact:?}");
    let (before, after) =
        (compact["bytes_before"].parse::<u64>().unwrap(), compact["bytes_after"].parse::<u64>().unwrap());
    assert!(after < before, "compaction dropped two superseded records: {compact:?}");
}
