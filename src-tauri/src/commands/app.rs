//! Application-level commands (metadata about the running core).

/// Returns the version string of the `vigil` core library.
#[tauri::command]
pub fn app_version() -> String {
    vigil::VERSION.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_version_is_the_core_version() {
        assert_eq!(app_version(), vigil::VERSION);
        assert!(!app_version().is_empty());
    }
}
