//! The process's memory allocator, mimalloc, and the two settings that keep
//! it from handing memory back to the kernel only to fault it in again.
//!
//! Ingest allocates and frees many small strings per request (prost
//! decodes every attribute into its own `String`) on several threads;
//! glibc's allocator spent about a third of the server's CPU on it. With
//! mimalloc the server stores 25-30 % more spans per CPU-second flat out
//! (BENCHMARKS.md, issue 3).
//!
//! Out of the box, mimalloc returns memory that stayed free for one second
//! to the kernel (a "purge") and asks for transparent huge pages. Memtables
//! live for seconds before their flush frees them, so under steady ingest
//! most freed memory was purged, and every new memtable faulted fresh pages
//! in, each zeroed by the kernel, two MiB at a time where huge pages were
//! given: a profile of the flooded server showed a quarter of all its CPU
//! in the kernel's `clear_page`. Hence:
//!
//! - the crate is built with mimalloc's `no_thp` feature, so it never asks
//!   for huge pages (the system's own THP policy still applies);
//! - free memory is purged after [`PURGE_DELAY_MS`] instead of one second,
//!   long enough for the next memtables to reuse it. The peak is unchanged:
//!   only memory that was in use already is kept.
//!
//! Users can still set `MIMALLOC_PURGE_DELAY` (milliseconds, `-1` never),
//! which then wins.

#[cfg(test)]
use libmimalloc_sys::mi_option_get;
use libmimalloc_sys::{mi_option_set, mi_option_t};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long free memory stays with the process before it goes back to the
/// kernel. Longer than a memtable's life at full load (flushes by size
/// every few seconds), short enough that an idle server shrinks soon.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (`mimalloc.h`);
/// `libmimalloc-sys` does not name it. The test below checks it is the
/// purge delay by its documented default.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Applies [`PURGE_DELAY_MS`] unless the user set `MIMALLOC_PURGE_DELAY`.
/// Call first thing in `main`, before any thread starts; mimalloc reads the
/// option on every purge, so it applies from then on.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_purge_delay(PURGE_DELAY_MS);
    }
}

fn set_purge_delay(ms: i64) {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` takes no pointer; it stores an integer in
    // mimalloc's option table, which purges read. `main` calls this before
    // it starts any other thread, so nothing reads the word meanwhile.
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, ms as _)
    };
}

#[cfg(test)]
fn purge_delay() -> i64 {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_get` only reads mimalloc's option table.
    let ms = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
    ms as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_index_is_mimallocs_purge_delay_and_tune_lengthens_it() {
        // Tests run with the global allocator above, untuned: mimalloc v3
        // documents a one-second default purge delay.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment decides; nothing of ours to check
        }
        assert_eq!(purge_delay(), 1_000, "not mimalloc v3's purge_delay");
        tune();
        assert_eq!(purge_delay(), PURGE_DELAY_MS);
        set_purge_delay(1_000);
    }
}
