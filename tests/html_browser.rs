//! The HTML report in a real browser. Headless Chromium opens the page of a fixture run (a
//! regression confirmed by A/B rounds, a crash whose stderr tries to inject a script) and the
//! history page of this repository's own H100 baselines; the page must log no console error (a script or fetch that slipped
//! past escaping would break the page's Content Security Policy, and Chromium logs that as an
//! error), and the full-page screenshot must show each element a reviewer needs.
//!
//! Chromium is found at `$GATEKEEPER_CHROMIUM` or as `chromium` on the PATH. Without it these
//! tests say so and pass, unless `GATEKEEPER_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs
//! it). `GATEKEEPER_SCREENSHOT_DIR=folder` keeps the screenshots.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Log, Page, Runtime};
use headless_chrome::{Browser, LaunchOptions};
use serde_json::{json, Value};

const WIDTH: u32 = 1200;

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GATEKEEPER_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium, or `None` (said on stderr) where there is none and none is required.
fn browser() -> Option<Browser> {
    let Some(path) = chromium() else {
        assert!(
            std::env::var("GATEKEEPER_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "GATEKEEPER_REQUIRE_BROWSER=1 but no Chromium was found (install the chromium package)"
        );
        eprintln!(
            "SKIPPED: no Chromium on the PATH (install the chromium package to run this test)"
        );
        return None;
    };
    // The flags a closed network needs: no background fetches, no first-run or sync traffic.
    let args: Vec<&OsStr> = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let options = LaunchOptions::default_builder()
        .path(Some(path))
        .headless(true)
        .sandbox(false)
        .window_size(Some((WIDTH, 900)))
        .args(args)
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .expect("launch options");
    Some(Browser::new(options).expect("Chromium starts"))
}

/// What the browser made of a page.
struct Loaded {
    errors: Vec<String>,
    screenshot: Screenshot,
    /// Per selector, the page boxes `[x, y, width, height]` of the elements it matched.
    boxes: Vec<(String, Vec<[f64; 4]>)>,
}

struct Screenshot {
    width: usize,
    height: usize,
    rgba: Vec<u8>,
    png: Vec<u8>,
}

impl Screenshot {
    fn decode(png: Vec<u8>) -> Screenshot {
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buffer = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buffer).expect("a frame");
        let channels = info.color_type.samples();
        let rgba = buffer[..info.buffer_size()]
            .chunks(channels)
            .flat_map(|px| [px[0], px[1], px[2], 255])
            .collect();
        Screenshot {
            width: info.width as usize,
            height: info.height as usize,
            rgba,
            png,
        }
    }

    /// How many distinct colours the area shows: a blank area shows one.
    fn colours_in(&self, [x, y, width, height]: [f64; 4]) -> usize {
        let mut seen = std::collections::HashSet::new();
        let x0 = (x.max(0.0) as usize).min(self.width);
        let y0 = (y.max(0.0) as usize).min(self.height);
        let x1 = ((x + width).ceil() as usize).min(self.width);
        let y1 = ((y + height).ceil() as usize).min(self.height);
        for row in y0..y1 {
            for col in x0..x1 {
                let at = (row * self.width + col) * 4;
                seen.insert([self.rgba[at], self.rgba[at + 1], self.rgba[at + 2]]);
            }
        }
        seen.len()
    }
}

fn evaluate(tab: &headless_chrome::Tab, expression: &str) -> Value {
    let result = tab
        .evaluate(&format!("JSON.stringify({expression})"), false)
        .expect("the expression runs");
    let text = result.value.and_then(|v| v.as_str().map(String::from));
    serde_json::from_str(&text.expect("a JSON string")).expect("JSON")
}

fn open(browser: &Browser, page: &Path, selectors: &[&str]) -> Loaded {
    let tab = browser.new_tab().expect("a tab");
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&errors);
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let error = match event {
            Event::LogEntryAdded(added)
                if added.params.entry.level == Log::LogEntryLevel::Error =>
            {
                Some(format!(
                    "{:?}: {}",
                    added.params.entry.source, added.params.entry.text
                ))
            }
            Event::RuntimeExceptionThrown(thrown) => Some(format!(
                "exception: {}",
                thrown.params.exception_details.text
            )),
            Event::RuntimeConsoleAPICalled(called)
                if called.params.Type == Runtime::ConsoleAPICalledEventTypeOption::Error =>
            {
                Some(format!("console.error: {:?}", called.params.args))
            }
            _ => None,
        };
        if let Some(error) = error {
            sink.lock().unwrap().push(error);
        }
    }))
    .expect("a listener");
    tab.enable_log().expect("Log domain");
    tab.enable_runtime().expect("Runtime domain");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    tab.navigate_to(&url)
        .expect("navigates")
        .wait_until_navigated()
        .expect("loads");
    // Log entries arrive as events: give late ones a moment.
    std::thread::sleep(Duration::from_millis(300));
    let height = evaluate(&tab, "document.documentElement.scrollHeight")
        .as_f64()
        .expect("a height");
    let png = tab
        .call_method(Page::CaptureScreenshot {
            format: Some(Page::CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: Some(Page::Viewport {
                x: 0.0,
                y: 0.0,
                width: f64::from(WIDTH),
                height,
                scale: 1.0,
            }),
            from_surface: Some(true),
            capture_beyond_viewport: Some(true),
            optimize_for_speed: None,
        })
        .expect("a screenshot")
        .data;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png)
        .expect("base64");
    let boxes = selectors
        .iter()
        .map(|selector| {
            let found = evaluate(
                &tab,
                &format!(
                    "[...document.querySelectorAll({})].map(e => {{ const r = e.getBoundingClientRect(); \
                     return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }})",
                    json!(selector)
                ),
            );
            let boxes = serde_json::from_value(found).expect("boxes");
            (selector.to_string(), boxes)
        })
        .collect();
    let errors = errors.lock().unwrap().clone();
    Loaded {
        errors,
        screenshot: Screenshot::decode(png),
        boxes,
    }
}

/// Asserts the page loaded cleanly and that each selector matched `count` elements (any number
/// at least one for `None`), each with a size and drawn in the screenshot.
fn check(loaded: &Loaded, expected: &[(&str, Option<usize>)], name: &str) {
    assert!(
        loaded.errors.is_empty(),
        "{name}: the browser logged errors: {:#?}",
        loaded.errors
    );
    if let Some(dir) = std::env::var_os("GATEKEEPER_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            Path::new(&dir).join(format!("{name}.png")),
            &loaded.screenshot.png,
        )
        .unwrap();
    }
    for ((selector, count), (_, boxes)) in expected.iter().zip(&loaded.boxes) {
        match count {
            Some(count) => assert_eq!(boxes.len(), *count, "{name}: {selector}"),
            None => assert!(!boxes.is_empty(), "{name}: no {selector}"),
        }
        for area in boxes {
            assert!(
                area[2] >= 1.0 && area[3] >= 1.0,
                "{name}: {selector} has no size: {area:?}"
            );
            assert!(
                loaded.screenshot.colours_in(*area) >= 2,
                "{name}: {selector} at {area:?} is blank in the screenshot"
            );
        }
    }
}

fn selectors<'a>(expected: &[(&'a str, Option<usize>)]) -> Vec<&'a str> {
    expected.iter().map(|(selector, _)| *selector).collect()
}

fn count(run: &Value, keep: impl Fn(&Value) -> bool) -> usize {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| keep(r))
        .count()
}

#[test]
fn a_fixture_runs_page_shows_every_part_and_logs_no_error() {
    let Some(browser) = browser() else {
        return;
    };
    let project = Project::with_committed_baseline(GATES);
    project.branch("feature");
    project.behave(json!({
        "small": {"crash": true},
        "mission": {"slowdown": 1.15},
        "long": {"slowdown": 1.15},
    }));
    project.write(
        "harness.py",
        &HARNESS.replace(
            "if spec.get(\"crash\"):",
            "if spec.get(\"crash\"):\n    sys.stderr.write(\"<script>console.error('injected')</script><img src=x onerror=console.error(1)>\\n\")",
        ),
    );
    project.commit("slower mission and long; small crashes");
    project
        .gatekeeper(&[
            "check",
            "--against",
            "main",
            "--json",
            "out.json",
            "--html",
            "report.html",
        ])
        .code(1);
    let run = project.json("out.json");
    let timed = count(&run, |r| {
        r["candidate_samples_us"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    });
    let ab = count(&run, |r| !r["ab"].is_null());
    assert!(
        timed >= 2 && ab >= 2,
        "the fixture needs timed and A/B shapes: {timed}, {ab}"
    );
    let expected = [
        ("#verdict", Some(1)),
        ("table.kernels tbody tr", Some(1)),
        ("article.shape", Some(3)),
        ("svg.samples", Some(timed)),
        ("svg.samples .box", Some(2 * timed)),
        ("svg.rounds", Some(ab)),
        ("svg.rounds .round", None),
        (".badge.regressed", None),
        ("article.shape[data-verdict=error] pre.log", Some(2)),
        ("footer", Some(1)),
    ];
    let loaded = open(
        &browser,
        &project.path().join("report.html"),
        &selectors(&expected),
    );
    check(&loaded, &expected, "fixture-run");
    let page = std::fs::read_to_string(project.path().join("report.html")).unwrap();
    assert!(page.contains("&lt;script&gt;console.error('injected')"));
}

/// This repository's own H100 baselines, as `history` reads them from git: a page of real
/// measurements, one trend chart per kernel x shape.
#[test]
fn the_repositorys_h100_history_page_shows_every_series_and_logs_no_error() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (json, page) = (
        dir.path().join("history.json"),
        dir.path().join("history.html"),
    );
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["history", "--device", "nvidia-h100-80gb-hbm3", "--json"])
        .arg(&json)
        .arg("--html")
        .arg(&page)
        .assert()
        .code(0);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let series = report["series"].as_array().unwrap();
    assert!(!series.is_empty(), "the repository keeps H100 baselines");
    let points: usize = series
        .iter()
        .map(|s| s["points"].as_array().unwrap().len())
        .sum();
    let changes = report["change_points"].as_array().unwrap().len();
    let expected = [
        ("#verdict", Some(1)),
        ("section.series", Some(series.len())),
        ("svg.trend", Some(series.len())),
        ("svg.trend .point", Some(points)),
        ("svg.trend .change", Some(changes)),
    ];
    let loaded = open(&browser, &page, &selectors(&expected));
    check(&loaded, &expected, "h100-history");
}

/// The check above is only worth something if a broken page fails it: a script that the policy
/// blocks, and a fetch it refuses, are both logged as errors.
#[test]
fn a_page_that_breaks_the_policy_is_caught() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    let policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";
    std::fs::write(
        &page,
        format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" \
             content=\"{policy}\"></head><body><p id=\"here\">text</p>\
             <script>document.title = 'ran'</script><img src=\"http://127.0.0.1:9/x.png\"></body></html>"
        ),
    )
    .unwrap();
    let loaded = open(&browser, &page, &["#here"]);
    assert!(
        loaded.errors.len() >= 2,
        "the blocked script and image must be logged: {:#?}",
        loaded.errors
    );
    assert_eq!(loaded.boxes[0].1.len(), 1);
}
