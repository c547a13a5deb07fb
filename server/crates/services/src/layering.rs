//! The house rules of ARCHITECTURE.md, checked on the sources when the services' unit tests
//! run: the services' modules import only modules below them (so `reveal` never imports
//! `provisioning`), and no source file outside the tests grows past 1,000 lines. A failure
//! names the file and the rule.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The services crate's top-level modules, bottom first. A module may use modules on lower
/// layers only (and itself). Keep in step with ARCHITECTURE.md. `keys` is on the bottom
/// layer: the token and vault keys are read from its key files.
const SERVICE_LAYERS: &[&[&str]] = &[
    &[
        "clock",
        "db",
        "client",
        "blast",
        "names",
        "org_failure",
        "org_name",
        "licence",
        "keys",
        "scope",
        "metrics",
    ],
    &["tokens", "outbox", "vault", "ending"],
    &["audit", "mail"],
    &["roles", "settings", "eca", "sharing_model"],
    &["requests"],
    &["reveal"],
    &["provisioning"],
    &["decisions", "usage"],
    &[
        "catalog",
        "doctor",
        "evidence",
        "renewal",
        "rotation",
        "assurance",
        "audit_stream",
    ],
    &["review", "records"],
    &["reviews"],
];

const MAX_LINES: usize = 1_000;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(3)
        .expect("the services crate sits in server/crates of the repository")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if name == "target" || name == "node_modules" || name.starts_with('.') {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// `crate::x` paths a source file names, including inside `use crate::{x, y::z}` groups.
fn crate_modules_used(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // Top-level names of the group, to its matching brace.
            let mut depth = 1;
            let mut name = String::new();
            let mut names = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                if depth == 1 {
                    if c == ',' {
                        names.push(std::mem::take(&mut name));
                    } else {
                        name.push(c);
                    }
                }
            }
            names.push(name);
            for n in names {
                let head: String = n
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    used.insert(head);
                }
            }
        } else {
            let head: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !head.is_empty() {
                used.insert(head);
            }
        }
        rest = after;
    }
    used
}

fn layer_of(module: &str) -> Option<usize> {
    SERVICE_LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
}

#[test]
fn services_modules_import_only_what_is_below_them() {
    let src = repo_root().join("server/crates/services/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("below src");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The crate root declares the modules; this check names them in its own tests.
        if first == "lib" || first == "layering" {
            continue;
        }
        let Some(own) = layer_of(&first) else {
            problems.push(format!(
                "services/src/{}: module `{first}` is not in SERVICE_LAYERS (add it, and to ARCHITECTURE.md)",
                relative.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(file).expect("readable source");
        for used in crate_modules_used(&source) {
            if used == first {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer < own => {}
                Some(_) => problems.push(format!(
                    "services/src/{}: `{first}` uses `crate::{used}`, which is not below it",
                    relative.display()
                )),
                // Re-exports at the crate root (crate::Database, crate::Portal...).
                None => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn reveal_never_imports_provisioning() {
    let src = repo_root().join("server/crates/services/src");
    let mut files = Vec::new();
    rust_files(&src.join("reveal"), &mut files);
    files.push(src.join("reveal.rs"));
    for file in files.iter().filter(|f| f.exists()) {
        let source = std::fs::read_to_string(file).expect("readable source");
        assert!(
            !crate_modules_used(&source).contains("provisioning"),
            "{} imports provisioning",
            file.display()
        );
    }
}

#[test]
fn no_source_file_outside_the_tests_is_over_a_thousand_lines() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["app/src", "frontend/src", "server/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    if let Ok(crates) = std::fs::read_dir(root.join("server/crates")) {
        for krate in crates.flatten() {
            rust_files(&krate.path().join("src"), &mut files);
        }
    }
    let mut long: Vec<String> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > MAX_LINES).then(|| {
                format!(
                    "{} ({lines} lines)",
                    f.strip_prefix(&root).unwrap_or(f).display()
                )
            })
        })
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "split these files (over {MAX_LINES} lines):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_import_reader_sees_grouped_and_plain_paths() {
    let used = crate_modules_used(
        "use crate::{audit::{self, Actor}, db::Database};\nlet x = crate::clock::now_ms();\n// crate::provisioning in a comment\n",
    );
    assert_eq!(
        used,
        ["audit", "clock", "db"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

/// Modules allowed to read the wall clock through [`crate::clock::SystemClock`] directly,
/// and why. Everything else reads the clock it is given.
const WALL_CLOCK_READERS: &[(&str, &str)] = &[
    (
        "audit/mod.rs",
        "entries are stamped when really written; `audit::record` takes no clock yet (issue 16 follow-up)",
    ),
    ("audit/anchor.rs", "anchors are stamped when really written"),
];

/// The ways of reading the wall clock a services module must not use: `Utc::now`,
/// `SystemTime::now`, `Local::now`, the free `clock::now_ms()` (the system clock, for code
/// outside the services) and `SystemClock` (outside [`WALL_CLOCK_READERS`]).
fn wall_clock_reads(source: &str, system_clock_allowed: bool) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut hits: Vec<&str> = ["Utc::now", "SystemTime::now", "Local::now"]
            .into_iter()
            .filter(|p| code.contains(p))
            .collect();
        // A free call (`now_ms()`, `clock::now_ms()`), not a clock's method (`.now_ms()`).
        let mut rest = code;
        while let Some(at) = rest.find("now_ms(") {
            let before = rest[..at].trim_end();
            let is_method = before.ends_with('.');
            let is_definition = before.ends_with("fn");
            if !is_method && !is_definition {
                hits.push("now_ms()");
            }
            rest = &rest[at + "now_ms(".len()..];
        }
        if code.contains("use crate::clock::") && code.contains("now_ms") {
            hits.push("now_ms()");
        }
        if !system_clock_allowed && code.contains("SystemClock") {
            hits.push("SystemClock");
        }
        hits.dedup();
        for hit in hits {
            found.push(format!("line {}: {hit}", n + 1));
        }
    }
    found
}

#[test]
fn no_services_module_but_the_clock_reads_the_wall_clock() {
    let src = repo_root().join("server/crates/services/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&src)
            .expect("below src")
            .to_string_lossy()
            .replace('\\', "/");
        // The clock itself; this check (its examples).
        if ["clock.rs", "layering.rs"].contains(&relative.as_str()) {
            continue;
        }
        let allowed = WALL_CLOCK_READERS.iter().any(|(f, _)| *f == relative);
        let source = std::fs::read_to_string(file).expect("readable source");
        for read in wall_clock_reads(&source, allowed) {
            problems.push(format!("services/src/{relative}: {read}"));
        }
    }
    assert!(
        problems.is_empty(),
        "services read the wall clock (use the Clock the Portal, engine or sender holds):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_wall_clock_reader_sees_each_way_of_reading_it() {
    let source = "let a = chrono::Utc::now();\n\
                  let b = std::time::SystemTime::now();\n\
                  let c = crate::clock::now_ms();\n\
                  use crate::clock::{now_ms, rfc3339};\n\
                  let d = SystemClock.now_ms();\n\
                  let e = self.clock.now_ms(); // Utc::now in a comment\n\
                  let f = clock\n    .now_ms();\n";
    assert_eq!(
        wall_clock_reads(source, false),
        [
            "line 1: Utc::now",
            "line 2: SystemTime::now",
            "line 3: now_ms()",
            "line 4: now_ms()",
            "line 5: SystemClock",
        ]
    );
    assert_eq!(wall_clock_reads(source, true).len(), 4);
}
