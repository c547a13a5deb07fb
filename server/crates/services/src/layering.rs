//! The services' layering, checked on the source: the reveal never imports the provisioning
//! workflow (what both need, the External Client App and the vault, lives below them), the
//! modules below both import neither, and no file of these rooms grows past 1,000 lines.

use std::path::{Path, PathBuf};

fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

fn src(module: &str) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let dir = root.join(module);
    let path = if dir.is_dir() {
        dir
    } else {
        root.join(format!("{module}.rs"))
    };
    sources(&path)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Whether `text` names module `module` of the crate (in a `use` or a path).
fn imports(text: &str, module: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .any(|l| l.contains(&format!("crate::{module}")))
}

#[test]
fn reveal_does_not_import_provisioning() {
    for (path, text) in src("reveal") {
        assert!(
            !imports(&text, "provisioning"),
            "{} imports the provisioning workflow",
            path.display()
        );
    }
}

#[test]
fn what_both_share_imports_neither() {
    for module in ["eca", "vault", "names", "org_failure"] {
        for (path, text) in src(module) {
            for above in ["provisioning", "reveal"] {
                assert!(
                    !imports(&text, above),
                    "{} imports {above}, which is above it",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn no_file_of_provisioning_reveal_or_eca_is_over_a_thousand_lines() {
    for module in [
        "provisioning",
        "reveal",
        "eca",
        "vault",
        "names",
        "org_failure",
    ] {
        for (path, text) in src(module) {
            let lines = text.lines().count();
            assert!(lines <= 1000, "{} has {lines} lines", path.display());
        }
    }
}
