//! `gatekeeper rank` through the real binary, with a fixture harness whose variants have known
//! speeds: ordering, an incorrect candidate excluded, a two-shape regressor discarded, a clear
//! loser raced out early, and the population file kept and reused.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

const HARNESS_V2: &str = include_str!("fixtures/harness_v2.py");

/// `attn` (100 µs a shape) and its variants: 2.5× and 1.25× faster, wrong, 1.5× slower on two
/// shapes, 5 % slower everywhere.
const RANKED: &str = r#"version: 1
gate: {regression_threshold: 0.10, min_regressed_shapes: 2, alpha: 0.05}
timing: {warmup: 1, samples: 20}
shapes:
  small: {B: 1}
  mission: {B: 2}
  long: {B: 3}
kernels:
  - name: attn
    command: ["python3", "harness_v2.py"]
    protocol: 2
    shapes: [small, mission, long]
    timeout_s: 20
    variants:
      - {name: fast, env: {FIXTURE_MACHINE: "0.4"}}
      - {name: quick, env: {FIXTURE_MACHINE: "0.8"}}
      - {name: wrong, env: {FIXTURE_WRONG: "1"}}
      - {name: two_slow, env: {FIXTURE_SLOW: "mission=1.5,long=1.5"}}
      - {name: a_bit_slower, env: {FIXTURE_MACHINE: "1.05"}}
"#;

fn project() -> Project {
    let project = Project::new(RANKED);
    project.write("harness_v2.py", HARNESS_V2);
    project
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn candidates_are_ranked_raced_discarded_and_excluded() {
    let project = project();
    project
        .gatekeeper(&[
            "rank",
            "--kernels",
            "attn",
            "--top",
            "2",
            "--json",
            "rank.json",
            "--markdown",
            "rank.md",
            "--html",
            "rank.html",
        ])
        .code(0)
        .stdout(predicate::str::contains("elite (top 2): fast, quick"));
    let report = project.json("rank.json");
    let page = std::fs::read_to_string(project.path().join("rank.html")).unwrap();
    assert!(page.contains("class=\"plot speedups\""), "{page}");
    assert!(page.contains("<code>fast</code>"));
    assert_eq!(names(&report["elite"]), ["fast", "quick"]);
    assert_eq!(
        names(&report["ranked"]),
        ["fast", "quick", "attn", "a_bit_slower"]
    );
    let fast = &report["elite"][0];
    assert!(
        (fast["geomean_speedup"].as_f64().unwrap() - 2.5).abs() < 0.1,
        "{fast}"
    );
    assert_eq!(fast["rating"], "Excellent");
    let [low, high] = [0, 1].map(|i| fast["geomean_ci"][i].as_f64().unwrap());
    assert!(low <= high && (low - 2.5).abs() < 0.1, "{fast}");
    for shape in ["small", "mission", "long"] {
        assert!(fast["shapes"][shape]["speedup"].as_f64().unwrap() > 2.3);
    }
    // The wrong one never reaches the rounds.
    assert_eq!(names(&report["failed"]), ["wrong"]);
    assert!(report["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("incorrect"));
    // 1.5× slower on two shapes: the seed's rule discards it.
    assert_eq!(names(&report["discarded"]), ["two_slow"]);
    assert!(report["discarded"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("on 2 shapes"));
    // A clear loser leaves at the first look (round 3); the Top-2 is settled then too.
    let slower = &report["ranked"][3];
    assert_eq!(slower["left_at"], 3, "{slower}");
    assert_eq!(report["rounds"], 3);
    let markdown = std::fs::read_to_string(project.path().join("rank.md")).unwrap();
    assert!(markdown.contains("| 1 (elite) | fast | 2."), "{markdown}");
    assert!(markdown.contains("**Discarded**") && markdown.contains("**Failed**"));
}

#[test]
fn the_population_keeps_the_elite_and_brings_it_back() {
    let project = project();
    project
        .gatekeeper(&[
            "rank",
            "--kernels",
            "attn",
            "--variants",
            "fast,quick",
            "--top",
            "2",
            "--population",
            "population.json",
        ])
        .code(0);
    let population = project.json("population.json");
    assert_eq!(names(&population["members"]), ["fast", "quick"]);
    assert_eq!(population["kernel"], "attn");
    // No temporary file left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(project.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_string_lossy().contains("population")
                && e.file_name() != "population.json"
        })
        .collect();
    assert!(leftovers.is_empty());

    // The stored elite competes again with a new candidate.
    project
        .gatekeeper(&[
            "rank",
            "--kernels",
            "attn",
            "--variants",
            "a_bit_slower",
            "--top",
            "2",
            "--population",
            "population.json",
            "--json",
            "rank.json",
        ])
        .code(0);
    let report = project.json("rank.json");
    let origins: Vec<(String, String)> = report["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["origin"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(origins[0], ("fast".to_string(), "elite".to_string()));
    assert_eq!(
        names(&project.json("population.json")["members"]),
        ["fast", "quick"]
    );
}

#[test]
fn racing_drops_a_clear_loser_while_close_candidates_run_on() {
    // Process noise of 3 %: two candidates 1 % apart cannot be told apart in 6 rounds, one
    // 1.3× slower than the incumbent can at the first look (and the rule then discards it).
    let gates = r#"version: 1
gate: {regression_threshold: 0.10, min_regressed_shapes: 2, alpha: 0.05}
timing: {warmup: 1, samples: 20}
shapes:
  small: {B: 1}
  mission: {B: 2}
kernels:
  - name: attn
    command: ["python3", "harness_v2.py"]
    protocol: 2
    shapes: [small, mission]
    timeout_s: 20
    env: {FIXTURE_PROCESS_NOISE: "0.03"}
    variants:
      - {name: fast, env: {FIXTURE_MACHINE: "0.4"}}
      - {name: close_a, env: {FIXTURE_MACHINE: "0.80"}}
      - {name: close_b, env: {FIXTURE_MACHINE: "0.81"}}
      - {name: behind, env: {FIXTURE_MACHINE: "1.3"}}
"#;
    let project = Project::new(gates);
    project.write("harness_v2.py", HARNESS_V2);
    project
        .gatekeeper(&[
            "rank",
            "--kernels",
            "attn",
            "--top",
            "2",
            "--max-rounds",
            "6",
            "--json",
            "rank.json",
        ])
        .code(0);
    let report = project.json("rank.json");
    let entry = |name: &str| {
        let ranked = report["ranked"].as_array().unwrap().iter().cloned();
        let discarded = report["discarded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["standing"].clone());
        ranked.chain(discarded).find(|r| r["name"] == name).unwrap()
    };
    assert_eq!(report["rounds"], 6, "{report}");
    assert_eq!(entry("behind")["left_at"], 3, "{report}");
    assert_eq!(entry("behind")["rounds"], 3);
    assert_eq!(entry("close_a")["rounds"], 6);
    assert_eq!(report["elite"][0]["name"], "fast");
    let timed = report["contestant_rounds"].as_u64().unwrap();
    let without = report["contestant_rounds_without_racing"].as_u64().unwrap();
    assert!(timed < without, "{timed} of {without}");
}

#[test]
fn usage_errors_exit_2() {
    let project = project();
    project
        .gatekeeper(&["rank", "--kernels", "nope"])
        .code(2)
        .stderr(predicate::str::contains("no kernel \"nope\""));
    project
        .gatekeeper(&["rank", "--kernels", "attn", "--variants", "zzz"])
        .code(2)
        .stderr(predicate::str::contains("no variant \"zzz\""));
    project
        .gatekeeper(&["rank", "--kernels", "attn", "--candidates", "gen/*.cu"])
        .code(2)
        .stderr(predicate::str::contains("command kernel"));
    project
        .gatekeeper(&["rank", "--kernels", "attn", "--top", "0"])
        .code(2);
    project
        .gatekeeper(&["rank", "--kernels", "attn", "--shapes", "huge"])
        .code(2)
        .stderr(predicate::str::contains("does not run shape"));
}

#[test]
fn every_candidate_failing_exits_1() {
    let project = project();
    project
        .gatekeeper(&["rank", "--kernels", "attn", "--variants", "wrong"])
        .code(1)
        .stdout(predicate::str::contains("failed wrong"));
}

#[test]
fn variants_are_validated_like_the_rest_of_gates_yaml() {
    let bad = RANKED.replace(
        "      - {name: fast, env: {FIXTURE_MACHINE: \"0.4\"}}",
        "      - {name: fast, options: [\"-DX\"], colour: red}\n      - {name: quick, source: x.cu}",
    );
    let project = Project::new(&bad);
    project
        .gatekeeper(&["check"])
        .code(2)
        .stderr(predicate::str::contains("colour").or(predicate::str::contains("unknown field")));
    let bad = RANKED.replace(
        "      - {name: fast, env: {FIXTURE_MACHINE: \"0.4\"}}",
        "      - {name: fast, options: [\"-DX\"]}\n      - {name: quick, source: x.cu}",
    );
    let project = Project::new(&bad);
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("kernels[0].variants[0].options")
            .and(predicate::str::contains("kernels[0].variants[1].source"))
            .and(predicate::str::contains("duplicate variant name \"quick\"")),
    );
}
