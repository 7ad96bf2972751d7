//! The process's memory policy, applied once by `main` before anything large is allocated:
//! no transparent huge pages, and memory a refresh frees kept for the next refresh.
//!
//! Both exist for the same reason: a large refresh shares a core with a UDP worker, and kernel
//! work on the refresh's memory (huge-page faults and compaction; returning freed pages and
//! faulting them in again) runs in sections that do not yield the core to the woken worker.
//! Process-wide settings, so they live here and not in any library path a test or bench would
//! run; never called per query or per refresh.

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v3: the 16th `mi_option_e`); the sys
/// crate exports the setter but not this constant.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies both settings (best effort: a failure is logged at debug level).
pub fn apply() {
    opt_out_of_transparent_huge_pages();
    keep_freed_memory_for_reuse();
}

/// Asks the kernel for no transparent huge pages in this process (`PR_SET_THP_DISABLE`). Why:
/// the allocator asks for huge pages, and every refresh of a large state allocates hundreds of
/// MB; a huge-page fault zeroes 2 MB at once and may first compact memory, moving pages that
/// workers are reading. With a 100k-task state refreshed every second beside a worker on the
/// same core, huge pages gave a p99 of 0.5-2.5 ms and a p99.9 near 40 ms; 4 KiB pages 0.2-0.3
/// ms and 1.7 ms (`loadtest/runs/2026-11-25-vm-thp/`).
fn opt_out_of_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
        let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if r != 0 {
            log::debug!(
                "PR_SET_THP_DISABLE failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Tells the allocator to keep freed memory for reuse instead of returning it to the kernel
/// (`purge_delay = -1`), unless the operator set `MIMALLOC_PURGE_DELAY`.
///
/// Why: every refresh frees the previous snapshot and the parsed state (about twice the state
/// document) and the next refresh allocates as much again. Returned after the default 1 s, that
/// memory went back through `madvise(MADV_DONTNEED)` and was faulted in again page by page on
/// every refresh; freeing it runs in kernel sections that do not yield the core to a woken
/// worker, and they were the largest cause of delayed worker wake-ups during a 100k-task
/// refresh (`loadtest/runs/2026-11-25-vm-purge/`). The cost: the resident size stays at the
/// refresh's peak, which every refresh reaches anyway.
fn keep_freed_memory_for_reuse() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer in mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
