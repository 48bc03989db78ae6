use std::path::Path;

fn main() {
    // `generate_context!` embeds the built UI, so it must exist before the shell compiles.
    let frontend_dist = Path::new("../ui/dist");
    if !frontend_dist.join("index.html").is_file() {
        panic!(
            "ui/dist/index.html is missing: run `scripts/build-ui` before building vigil-desktop"
        );
    }
    // Re-embed the UI whenever a new build of it lands.
    println!("cargo:rerun-if-changed=../ui/dist");

    let attributes = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build step failed: {error:#}");
    }
}
