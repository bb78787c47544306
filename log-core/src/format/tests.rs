//! Round trips and damage detection for every encoder and decoder.

use super::*;

#[test]
fn record_round_trips_and_every_bit_flip_is_caught() {
    let rec = RecordRef {
        offset: 42,
        timestamp_ms: 1_700_000_000_000,
        flags: RecordFlags::TOMBSTONE,
        key: Some(b"key"),
        value: b"value bytes",
        epoch: 0x1234,
    };
    let mut buf = Vec::new();
    encode_record(&mut buf, &rec);
    assert_eq!(buf.len() as u64, record_frame_len(rec.key, rec.value));
    let (f, n) = decode_frame(&buf).unwrap();
    assert_eq!(n, buf.len());
    assert_eq!(f, Frame::Record(rec));
    for i in 0..buf.len() * 8 {
        let mut b = buf.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert!(decode_frame(&b).is_err() || decode_frame(&b).unwrap().1 != buf.len(), "bit {i}");
    }
}

#[test]
fn empty_key_differs_from_no_key() {
    let mut a = Vec::new();
    encode_record(
        &mut a,
        &RecordRef { offset: 0, timestamp_ms: 0, flags: RecordFlags::NONE, key: Some(b""), value: b"", epoch: 0 },
    );
    let mut b = Vec::new();
    encode_record(
        &mut b,
        &RecordRef { offset: 0, timestamp_ms: 0, flags: RecordFlags::NONE, key: None, value: b"", epoch: 0 },
    );
    assert_ne!(a, b);
    match decode_frame(&a).unwrap().0 {
        Frame::Record(r) => assert_eq!(r.key, Some(&b""[..])),
        Frame::Marker(_) => panic!("decoded a marker"),
    }
}

#[test]
fn marker_round_trips() {
    let m = Marker {
        kind: MarkerKind::Seal,
        next_offset: 9,
        timestamp_ms: 5,
        n_records: 3,
        min_ts: 1,
        max_ts: 4,
        batch_start_pos: 64,
        own_pos: 300,
        base_offset: 6,
    };
    let mut buf = Vec::new();
    encode_marker(&mut buf, &m);
    assert_eq!(buf.len(), MARKER_FRAME_LEN);
    assert_eq!(decode_frame(&buf).unwrap(), (Frame::Marker(m), MARKER_FRAME_LEN));
}

#[test]
fn truncated_frames_are_incomplete_not_panics() {
    let mut buf = Vec::new();
    encode_record(
        &mut buf,
        &RecordRef { offset: 1, timestamp_ms: 2, flags: RecordFlags::NONE, key: None, value: &[7; 50], epoch: 0 },
    );
    for len in 0..buf.len() {
        assert!(matches!(decode_frame(&buf[..len]), Err(DecodeError::Incomplete(_))), "len {len}");
    }
}

#[test]
fn header_and_index_round_trip() {
    let h = SegmentHeader::new(77, 99, SegmentKind::Plain);
    let (plain, compacted) = (SegmentKind::Plain, SegmentKind::Compacted);
    for (kind, version) in [
        (plain, SegmentVersion::LEGACY_PLAIN),
        (compacted, SegmentVersion::LEGACY_COMPACTED),
        (plain, SegmentVersion::CURRENT),
        (compacted, SegmentVersion::CURRENT),
    ] {
        let v = SegmentHeader { kind, version, ..h };
        assert_eq!(SegmentHeader::decode(&v.encode()), Ok(v));
    }
    // Version 3 keeps the kind apart from the version.
    let e = SegmentHeader { kind: SegmentKind::Compacted, ..h }.encode();
    assert_eq!((u32_at(&e, 8), u32_at(&e, 32)), (Some(3), Some(2)));
    let mut bad_kind = h.encode();
    bad_kind[32] = 7;
    let crc = crc32fast::hash(&bad_kind[..60]);
    bad_kind[60..64].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(SegmentHeader::decode(&bad_kind), Err(HeaderError::Invalid(_))));
    let mut bad = h.encode();
    bad[20] ^= 1;
    assert!(SegmentHeader::decode(&bad).is_err());
    let idx = IndexFile { base_offset: 5, end_pos: 1000, entries: vec![(5, 64), (9, 500)] };
    let b = encode_index(IndexKind::Offset, &idx);
    assert_eq!(decode_index(IndexKind::Offset, &b), Ok(idx));
    assert!(decode_index(IndexKind::Time, &b).is_err());
    for i in 0..b.len() {
        let mut c = b.clone();
        c[i] ^= 0x10;
        assert!(decode_index(IndexKind::Offset, &c).is_err(), "byte {i}");
    }
}

#[test]
fn manifest_round_trips_and_rejects_damage() {
    let entry = |base, next_offset, output| ManifestEntry { base, next_offset, output };
    let id = |len, crc| Some(FileIdentity { len, crc });
    let current = Manifest {
        entries: vec![entry(0, 10, id(100, 7)), entry(10, 25, id(4096, 0xDEAD_BEEF)), entry(40, 41, id(90, 0))],
    };
    let plain = Manifest { entries: vec![entry(0, 10, None), entry(10, 25, None), entry(40, 41, None)] };
    for (m, version, size) in [(current, MANIFEST_VERSION, 28), (plain, MANIFEST_VERSION_PLAIN, 16)] {
        let b = m.encode();
        assert_eq!(b.len(), 20 + 3 * size + 4);
        assert_eq!(b[8..12], version.to_le_bytes());
        assert_eq!(Manifest::decode(&b), Ok(m));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x04;
            assert!(Manifest::decode(&c).is_err(), "byte {i}");
        }
        for len in 0..b.len() {
            assert!(Manifest::decode(&b[..len]).is_err(), "len {len}");
        }
    }
    assert_eq!(parse_file_name("00000000000000000010.log.compacted"), Some(FileKind::Compacted(10)));
    assert_eq!(parse_file_name("log.compaction"), Some(FileKind::CompactionManifest));
    assert_eq!(parse_file_name("log.lock"), Some(FileKind::Lock));
    assert_eq!(parse_file_name("log.resync"), Some(FileKind::ResyncMarker));
}

/// A metadata file as builds before version 3 wrote it: version 1 (no
/// epochs, 36 bytes) or version 2 (a non-empty epoch table).
fn legacy_meta(m: &Meta) -> Vec<u8> {
    let entries = m.epochs.entries();
    let version: u32 = if entries.is_empty() { 1 } else { 2 };
    let mut b = META_MAGIC.to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    let flags = u32::from(m.truncate_from.is_some()) | if m.restart { 2 } else { 0 };
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&m.first_offset.to_le_bytes());
    b.extend_from_slice(&m.truncate_from.unwrap_or(0).to_le_bytes());
    if !entries.is_empty() {
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (start, epoch) in entries {
            b.extend_from_slice(&start.to_le_bytes());
            b.extend_from_slice(&epoch.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn meta_round_trips() {
    let epochs = Epochs::default().begin(9).begin(12).begin(10);
    assert_eq!(epochs.entries(), &[(9, 1), (10, 3)]);
    let metas = [
        Meta::default(),
        Meta { first_offset: 7, truncate_from: Some(9), restart: false, epochs: Epochs::default(), last_segment: None },
        Meta { first_offset: 70, truncate_from: None, restart: true, epochs: Epochs::default(), last_segment: Some(0) },
        Meta {
            first_offset: 7,
            truncate_from: Some(10),
            restart: false,
            epochs: epochs.clone(),
            last_segment: Some(9),
        },
        Meta { first_offset: 7, truncate_from: None, restart: false, epochs: epochs.clone(), last_segment: None },
    ];
    for m in &metas {
        let b = m.encode();
        assert_eq!(b[8..12], META_VERSION.to_le_bytes());
        assert_eq!(b.len(), 48 + 16 * m.epochs.entries().len());
        assert_eq!(Meta::decode(&b).as_ref(), Ok(m));
        for i in 0..b.len() {
            let mut b = m.encode();
            b[i] ^= 4;
            assert!(Meta::decode(&b).is_err(), "byte {i}");
        }
        assert!(Meta::decode(&b[..b.len() - 1]).is_err());
    }
    // Files of older builds (versions 1 and 2) still read; they name no
    // last segment.
    for m in &metas {
        let old = Meta { last_segment: None, ..m.clone() };
        let b = legacy_meta(&old);
        assert_eq!(b.len(), if m.epochs.entries().is_empty() { META_LEN } else { 40 + 16 * 2 });
        assert_eq!(Meta::decode(&b), Ok(old));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 4;
            assert!(Meta::decode(&c).is_err(), "byte {i}");
        }
    }
}

#[test]
fn epochs_say_which_epoch_each_offset_was_written_in() {
    let e = Epochs::default();
    assert_eq!((e.current(), e.expected(0), e.expected(u64::MAX)), (0, 0, 0));
    // truncate_from(10), then (10, 1); truncate_from(20), then (20, 2);
    // truncate_from(15): epoch 3 from 15 replaces epoch 2 at 20.
    let e = e.begin(10).begin(20).begin(15);
    assert_eq!(e.entries(), &[(10, 1), (15, 3)]);
    assert_eq!([e.expected(9), e.expected(10), e.expected(14), e.expected(15), e.expected(99)], [0, 1, 1, 3, 3]);
    assert!(e.admits(12, 1) && !e.admits(12, 0) && !e.admits(16, 2) && e.admits(16, 3));
    // Prefix truncation keeps the entry covering the new first offset.
    assert_eq!(e.from_offset(12).entries(), &[(10, 1), (15, 3)]);
    assert_eq!(e.from_offset(15).entries(), &[(15, 3)]);
    assert_eq!(e.from_offset(5).entries(), &[(10, 1), (15, 3)]);
    // A newer metadata version is refused as such, not as damage.
    let mut b = Meta { epochs: e, ..Meta::default() }.encode();
    b[8] = 4;
    let n = b.len() - 4;
    let crc = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(Meta::decode(&b), Err(DecodeError::UnknownVersion(4)));
}

#[test]
fn file_names() {
    assert_eq!(segment_file_name(5), "00000000000000000005.log");
    assert_eq!(parse_file_name("00000000000000000005.log"), Some(FileKind::Segment(5)));
    assert_eq!(parse_file_name("00000000000000000005.index"), Some(FileKind::OffsetIndex(5)));
    assert_eq!(parse_file_name("00000000000000000005.timeindex"), Some(FileKind::TimeIndex(5)));
    assert_eq!(parse_file_name("00000000000000000005.log.tmp"), Some(FileKind::Temporary));
    assert_eq!(parse_file_name("5.log"), None);
    assert_eq!(parse_file_name("notes.txt"), None);
    assert_eq!(parse_file_name("99999999999999999999.log"), None);
}
