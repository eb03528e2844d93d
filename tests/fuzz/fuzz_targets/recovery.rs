//! Crash recovery of a partition directory whose files hold arbitrary bytes:
//! the fuzz input becomes `00000000000000000000.log` (and optionally its
//! `.index`, `.timeindex`, a checkpoint and the clean-shutdown marker; see
//! the input layout in the shared exercise). Opening must never panic or
//! fail, everything readable after a full scan must be valid batches with
//! contiguous offsets (no holes up to the high watermark), the log must take
//! appends, and a second recovery must agree.
//!
//! The steps live in `storage/tests/common/recovery_exercise.rs`, which
//! `storage/tests/recovery_fuzz_corpus.rs` also uses to replay this target's
//! corpus (`corpus/recovery`) in `cargo test`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../../storage/tests/common/recovery_exercise.rs"]
mod recovery_exercise;

/// One partition directory per fuzzing process, emptied for every input.
fn work_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("strom-fuzz-recovery-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    recovery_exercise::exercise(work_dir(), data);
});
