//! The on-disk format, for tools: what the `seglog` CLI, the fuzz targets,
//! the format fixtures and the simulator need to name files, read headers
//! and frames, and forge damaged files. Everything else of the codec is
//! private to log-core (`format/`). `docs/FORMAT.md` is the specification
//! of every byte.
//!
//! This is an inspection surface, not the way to use a log: records go in
//! and out through [`Log`](crate::Log) and
//! [`SharedLog`](crate::SharedLog), which check every byte.

/// File names of a log directory, and telling them apart.
pub use crate::format::{
    FileKind, LOCK_FILE_NAME, MANIFEST_FILE_NAME, META_FILE_NAME, RESYNC_FILE_NAME, RESYNC_SPARE_FILE_NAME,
    compacted_file_name, index_file_name, parse_file_name, segment_file_name,
};

/// Segment files: the header, and the frames after it.
pub use crate::format::{
    DecodeError, Frame, HEADER_LEN, HeaderError, MARKER_FRAME_LEN, Marker, MarkerKind, RECORD_OVERHEAD, SegmentHeader,
    SegmentKind, SegmentVersion, decode_frame, encode_marker, encode_record,
};

/// Index files.
pub use crate::format::{IndexFile, IndexKind, decode_index, encode_index};

/// `log.meta` and the compaction manifest.
pub use crate::format::{Epochs, FileIdentity, Manifest, ManifestEntry, Meta};
