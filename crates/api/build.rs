//! Takes the files the docs page loads out of the Swagger UI release that
//! `utoipa-swagger-ui-vendored` packages (a zip of the whole repository at a tag), into
//! `OUT_DIR/swagger-ui/`, where `src/docs.rs` embeds them. The release's `dist/` also holds source
//! maps and ES-module bundles the page never loads, some 9 MB; leaving them out keeps the binary
//! under PL-16's 40 MB. Everything comes from crates.io: no download, the page works offline.

use std::error::Error;
use std::io::{Cursor, Read};
use std::path::PathBuf;

/// The files `index.html` loads, besides `swagger-initializer.js`, which is ours (`src/docs/`).
const FILES: &[&str] = &[
    "index.html",
    "index.css",
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("swagger-ui");
    std::fs::create_dir_all(&out)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED))?;
    for name in FILES {
        // Entries are `swagger-ui-<version>/dist/<name>`.
        let suffix = format!("/dist/{name}");
        let entry = archive
            .file_names()
            .find(|entry| entry.ends_with(&suffix) && entry.matches('/').count() == 2)
            .map(str::to_owned)
            .ok_or_else(|| format!("{name} is not in the vendored Swagger UI"))?;
        let mut bytes = Vec::new();
        archive.by_name(&entry)?.read_to_end(&mut bytes)?;
        std::fs::write(out.join(name), bytes)?;
    }
    Ok(())
}
