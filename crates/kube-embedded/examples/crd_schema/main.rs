//! Regenerates the embedded store's copy of the KubeRay CRD schemas
//! (`crates/kube-embedded/src/crd_schema/kuberay.json`, see `generate.rs`):
//!
//! ```text
//! cargo run -p kube-embedded --example crd_schema -- --write     # the version e2e/kuberay/go.mod pins
//! cargo run -p kube-embedded --example crd_schema -- CRD_DIR SOURCE   # print, from any directory
//! ```
//!
//! `--write` downloads the module with `go mod download` (Go and the Go module proxy are
//! needed). `cargo test -p kube-embedded --test crd_schema -- --ignored` checks that the
//! committed file is up to date.

mod generate;

use std::path::{Path, PathBuf};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match args.as_slice() {
        [flag] if flag == "--write" => {
            let version = generate::pinned_version(&repo)?;
            let dir = generate::download_crds(&repo, &version)?;
            let text = generate::generate(&dir, &format!("{}@{version}", generate::MODULE))?;
            let path = repo.join(generate::SCHEMA_FILE);
            std::fs::write(&path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
            eprintln!(
                "wrote {} ({} bytes) from {}@{version}",
                generate::SCHEMA_FILE,
                text.len(),
                generate::MODULE
            );
            Ok(())
        }
        [dir, source] => {
            print!("{}", generate::generate(&PathBuf::from(dir), source)?);
            Ok(())
        }
        _ => Err("usage: crd_schema --write | crd_schema CRD_DIR SOURCE".into()),
    }
}
