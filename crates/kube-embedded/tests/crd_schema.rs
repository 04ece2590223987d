//! The committed CRD schema (`src/crd_schema/kuberay.json`) must be what the generator makes
//! from the CRDs of the KubeRay operator module that `e2e/kuberay/go.mod` pins. Needs Go and
//! the Go module proxy, hence ignored by default; `e2e/run-suites` runs it:
//!
//! ```text
//! cargo test -p kube-embedded --test crd_schema -- --ignored
//! ```

#[allow(dead_code)]
#[path = "../examples/crd_schema/generate.rs"]
mod generate;

use std::path::Path;

#[test]
#[ignore = "needs Go and the Go module proxy (run by e2e/run-suites)"]
fn committed_schema_matches_the_pinned_crds() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let version = generate::pinned_version(&repo).unwrap();
    let dir = generate::download_crds(&repo, &version).unwrap();
    let want = generate::generate(&dir, &format!("{}@{version}", generate::MODULE)).unwrap();
    let have = std::fs::read_to_string(repo.join(generate::SCHEMA_FILE)).unwrap();
    assert!(
        have == want,
        "{} is not what {}@{version} gives: regenerate it with \
         `cargo run -p kube-embedded --example crd_schema -- --write` and review the difference",
        generate::SCHEMA_FILE,
        generate::MODULE
    );
}
