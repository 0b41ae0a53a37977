//! Keeps `dashboards/alerts.yml` honest: every rule passes `promtool test rules` against its
//! cases in `dashboards/alerts.test.yml` (each rule has one that fires), uses only metrics
//! defined in `src/metrics.rs` and labels the running app exports, carries a summary, a
//! description and a runbook link to a README section that exists, and shows on the
//! dashboard's "Alerts" row.

use std::collections::BTreeSet;

use yaml_rust2::{Yaml, YamlLoader};

use crate::common;
use crate::dashboards::{
    ALERTS_SERIES, SCRAPE_LABELS, all_exprs, label_names, load_dashboard, metric_names, promtool,
    scrape_after_real_work,
};

const RULES: &str = "dashboards/alerts.yml";
const RULE_TESTS: &str = "dashboards/alerts.test.yml";
/// Series Prometheus makes itself (per scrape target), which rules may use besides `dota_…`.
const PROMETHEUS_SERIES: &[&str] = &["up"];

fn load_yaml(rel: &str) -> Yaml {
    let text = std::fs::read_to_string(common::repo_path(rel)).expect("readable YAML file");
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(docs.len(), 1, "{rel} is one YAML document");
    docs.remove(0)
}

/// One alerting rule: its name, expression and annotations.
struct Rule {
    name: String,
    expr: String,
    annotations: Yaml,
}

fn rules() -> Vec<Rule> {
    let doc = load_yaml(RULES);
    let rules: Vec<Rule> = doc["groups"]
        .as_vec()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_vec().expect("rules").iter())
        .map(|r| Rule {
            name: r["alert"]
                .as_str()
                .expect("every rule is an alert")
                .to_string(),
            expr: r["expr"].as_str().expect("expr").to_string(),
            annotations: r["annotations"].clone(),
        })
        .collect();
    assert_eq!(
        rules.len(),
        9,
        "the eight alerts of issue 22 and task panics"
    );
    rules
}

/// Metric names defined in `src/metrics.rs` (its `pub const NAME: &str = "dota_…"` lines).
fn defined_metrics() -> BTreeSet<String> {
    let source = std::fs::read_to_string(common::repo_path("src/metrics.rs")).expect("metrics.rs");
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter(|l| l.contains(": &str = \"dota_"))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_string)
        .collect()
}

/// GitHub's anchor for a Markdown heading: lower case, spaces to dashes, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    let rules = common::repo_path(RULES);
    let Some((ok, said)) = promtool(&["check", "rules", rules.to_str().expect("UTF-8")], "") else {
        return;
    };
    assert!(ok, "promtool check rules:\n{said}");
    let tests = common::repo_path(RULE_TESTS);
    let Some((ok, said)) = promtool(&["test", "rules", tests.to_str().expect("UTF-8")], "") else {
        return;
    };
    assert!(ok, "promtool test rules:\n{said}");
}

#[test]
fn every_rule_has_a_firing_test_case() {
    let doc = load_yaml(RULE_TESTS);
    let mut fired = BTreeSet::new();
    for case in doc["tests"].as_vec().expect("tests") {
        for check in case["alert_rule_test"].as_vec().into_iter().flatten() {
            let fires = check["exp_alerts"].as_vec().is_some_and(|a| !a.is_empty());
            if fires {
                fired.insert(check["alertname"].as_str().expect("alertname").to_string());
            }
        }
    }
    let names: BTreeSet<String> = rules().into_iter().map(|r| r.name).collect();
    let untested: Vec<_> = names.difference(&fired).collect();
    assert!(
        untested.is_empty(),
        "rules with no test case in which they fire: {untested:?}"
    );
}

#[test]
fn every_rule_says_what_to_check_and_links_its_runbook() {
    let readme = std::fs::read_to_string(common::repo_path("README.md")).expect("README");
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    for rule in rules() {
        let name = &rule.name;
        for key in ["summary", "description", "runbook"] {
            let text = rule.annotations[key].as_str().unwrap_or("");
            assert!(!text.trim().is_empty(), "{name} has a {key}");
        }
        let runbook = rule.annotations["runbook"].as_str().expect("runbook");
        let target = runbook
            .strip_prefix("README.md#")
            .unwrap_or_else(|| panic!("{name}: runbook {runbook} points into README.md"));
        assert_eq!(
            target,
            format!("runbook-{}", name.to_lowercase()),
            "{name}: the runbook entry is headed `Runbook: {name}`"
        );
        assert!(
            anchors.contains(target),
            "{name}: README.md has no heading for #{target}"
        );
    }
}

#[test]
fn rule_expressions_use_only_metrics_defined_in_src_metrics() {
    let defined = defined_metrics();
    assert!(defined.len() >= 10, "parsed metric names: {defined:?}");
    for rule in rules() {
        let names = metric_names(&rule.expr);
        let prometheus_own = PROMETHEUS_SERIES
            .iter()
            .any(|s| rule.expr.starts_with(&format!("{s}{{")));
        assert!(
            !names.is_empty() || prometheus_own,
            "{}: `{}` uses no dota_ metric",
            rule.name,
            rule.expr
        );
        for name in names {
            let family = crate::dashboards::HISTOGRAM_SUFFIXES
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                defined.contains(&name) || defined.contains(family),
                "{}: `{name}` is not defined in src/metrics.rs",
                rule.name
            );
        }
    }
}

#[actix_rt::test]
async fn rule_expressions_use_only_metrics_and_labels_the_app_exports() {
    let (t, exposition) = scrape_after_real_work().await;
    let mut problems = Vec::new();
    for rule in rules() {
        let mut labels_available: BTreeSet<String> =
            SCRAPE_LABELS.iter().map(|l| l.to_string()).collect();
        for name in metric_names(&rule.expr) {
            match exposition.family_of(&name) {
                Some(family) => labels_available.extend(exposition.labels_of(family)),
                None => problems.push(format!("{}: `{name}` is not in /metrics", rule.name)),
            }
        }
        for label in label_names(&rule.expr).difference(&labels_available) {
            problems.push(format!("{}: label `{label}` is not exported", rule.name));
        }
    }
    t.shutdown().await;
    assert!(
        problems.is_empty(),
        "alert rules that /metrics cannot answer:\n{}\n\n/metrics:\n{}",
        problems.join("\n"),
        exposition.text
    );
}

#[test]
fn the_dashboard_shows_every_firing_rule() {
    let exprs = all_exprs(&load_dashboard());
    let alert_queries: Vec<&String> = exprs
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.contains(ALERTS_SERIES))
        .collect();
    assert!(
        !alert_queries.is_empty(),
        "the dashboard has an Alerts row querying ALERTS{{}}"
    );
    for expr in alert_queries {
        assert!(
            expr.contains(r#"alertstate="firing""#),
            "`{expr}` shows firing alerts"
        );
        assert!(
            expr.contains(r#"alertname=~"Dota.*""#),
            "`{expr}` selects the rules of {RULES}"
        );
    }
    for rule in rules() {
        assert!(
            rule.name.starts_with("Dota"),
            "{}: the dashboard selects alerts named Dota*",
            rule.name
        );
    }
}
