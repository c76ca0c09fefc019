//! Embeds every `assets/models/*.safetensors` in the plugin, so that the bundles play
//! real instruments with no files beside them. Generates `bundled_models.rs`: a sorted
//! list of `(display name, bytes)`.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code =
        String::from("/// Models embedded from `assets/models`: (display name, file bytes).\n");
    code.push_str("pub const BUNDLED_MODELS: &[(&str, &[u8])] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let stem = f.file_stem().unwrap().to_string_lossy();
        let name: String = stem
            .split(['_', '-'])
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|first| first.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        let path = f.canonicalize().unwrap();
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled_models.rs");
    std::fs::write(out, code).unwrap();
}
