//! Render cost of the console: a 1,000-integration snapshot (and a 500-entry 401/403 log) drawn at 200x50 on a
//! test backend. Run with `cargo bench --bench render`; target: under 2 ms per frame in release.

use authwatch::tui::fixture;
use authwatch::tui::{App, AppOptions, render};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRAMES: usize = 2_000;

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    let p50 = samples[n / 2];
    let p99 = samples[(n * 99 / 100).min(n - 1)];
    let max = samples[n - 1];
    println!(
        "{name:<34} frames={n:<5} mean={:>8.3}ms p50={:>8.3}ms p99={:>8.3}ms max={:>8.3}ms",
        mean.as_secs_f64() * 1e3,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}

fn main() {
    let now = fixture::now();
    let snap = Arc::new(fixture::big_snapshot(1_000));
    let opts = AppOptions {
        read_only: false,
        color: true,
        ascii: false,
        log_path: None,
    };

    // 1. Redraw of a changing screen: move the selection every frame (full diff work every time).
    let mut app = App::new(snap.clone(), opts.clone());
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    for _ in 0..50 {
        term.draw(|f| render(f, &app, now)).unwrap(); // warm up
    }
    let down = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
    let mut samples = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        app.handle_key(down, now);
        let t = Instant::now();
        term.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats("200x50, 1000 integrations, moving", samples);

    // 2. A new snapshot every frame (sort + filter + draw): the engine publishing while the user watches.
    let mut samples = Vec::with_capacity(FRAMES / 4);
    for _ in 0..FRAMES / 4 {
        let t = Instant::now();
        app.apply_snapshot(snap.clone());
        term.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats("200x50, 1000 integr., new snapshot", samples);

    // 3. Detail view and the 80x24 main screen.
    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut samples = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        app.handle_key(down, now);
        let t = Instant::now();
        small.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats("80x24, 1000 integrations, moving", samples);

    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), now);
    let mut samples = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let t = Instant::now();
        term.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats("200x50, detail view", samples);
}
