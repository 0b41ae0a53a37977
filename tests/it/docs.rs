//! The README cannot drift from the code it describes: its metrics table names exactly the
//! metrics `src/metrics.rs` declares, and its code map names every module directory under
//! `src/` (the settings table has its own test in `config::docs_tests`, the layers theirs in
//! `scripts/check_structure.py`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The README section that starts at `heading` (a whole line) and ends at the next heading
/// of the same or a higher level.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no `{heading}` section"));
    let body = &readme[start + heading.len() + 2..];
    let end = body
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level && line.chars().nth(hashes) == Some(' ')
        })
        .map_or(body.len(), |(at, _)| at);
    &body[..end]
}

/// Backticked words of the table rows (lines starting with `|`) of a text.
fn table_names(text: &str, keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('`').skip(1).step_by(2).map(str::to_string))
        .filter(|w| keep(w))
        .collect()
}

#[test]
fn the_readme_metrics_table_names_every_metric_and_no_other() {
    let source = read("src/metrics.rs");
    let declared: BTreeSet<String> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split_once("= \"").map(|(_, v)| v))
        .filter_map(|v| v.split_once('"').map(|(name, _)| name.to_string()))
        .filter(|name| name.starts_with("dota_"))
        .collect();
    assert!(
        declared.len() > 20,
        "metric constants read from src/metrics.rs: {declared:?}"
    );
    let readme = read("README.md");
    let documented = table_names(section(&readme, "## Monitoring"), |w| {
        w.starts_with("dota_")
    });
    let missing: Vec<_> = declared.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "README metrics table: missing {missing:?}, not exported {unknown:?}"
    );
}

fn module_dirs(dir: &Path, rel: &str, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name");
            let rel = format!("{rel}{name}/");
            out.insert(rel.clone());
            module_dirs(&path, &rel, out);
        }
    }
}

#[test]
fn the_readme_code_map_names_every_module() {
    let src = repo().join("src");
    let mut expected = BTreeSet::new();
    module_dirs(&src, "", &mut expected);
    for entry in std::fs::read_dir(&src).expect("read src/") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        if name.ends_with(".rs") && name != "lib.rs" && name != "main.rs" {
            let dir = format!("{}/", name.trim_end_matches(".rs"));
            if !expected.contains(&dir) {
                expected.insert(name);
            }
        }
    }
    // Directories that hold only assets (the status page) are not modules.
    expected.retain(|m| !m.contains("assets/"));
    let readme = read("README.md");
    let mapped = table_names(section(&readme, "### Modules"), |_| true);
    let missing: Vec<_> = expected.iter().filter(|m| !mapped.contains(*m)).collect();
    assert!(missing.is_empty(), "README code map misses {missing:?}");
}
