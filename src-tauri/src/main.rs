// Prevents an additional console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // Blocks of 128 KiB and more get mappings of their own, unmapped when freed. glibc's default
    // raises that threshold to the largest block freed so far, so after sign-in (two argon2id
    // runs of 19 MiB each, on two threads) every later large block, and the memory of those
    // runs, stayed in the heaps of the console for as long as it was open.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
    vigil_desktop::run();
}
