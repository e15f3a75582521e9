//! Render cost of the console: 1,000- and 10,000-integration snapshots (and a 500-entry 401/403 log) drawn at
//! 200x50 and 80x24 through the crossterm backend into a sink (so escape encoding counts, not the terminal).
//! The selection moves every frame and wraps to the top. Run with `cargo bench --bench render`; target: under
//! 2 ms per frame in release.

use authwatch::tui::fixture;
use authwatch::tui::{App, AppOptions, LastFrame, draw_frame, render};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::CrosstermBackend;
use ratatui::{Terminal, TerminalOptions, Viewport};
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

/// Move the selection down, back to the top after the last row (so every frame moves it, at any size).
fn step(app: &mut App, moved: &mut usize, rows: usize, now: chrono::DateTime<chrono::Utc>) {
    let key = if *moved + 1 >= rows {
        *moved = 0;
        KeyCode::Char('g')
    } else {
        *moved += 1;
        KeyCode::Char('j')
    };
    app.handle_key(KeyEvent::new(key, KeyModifiers::NONE), now);
}

/// A terminal that encodes every frame's escape sequences as the real one does, into a sink.
fn sink_terminal(cols: u16, rows: u16) -> Terminal<CrosstermBackend<std::io::Sink>> {
    // A fixed viewport: the sink is not a terminal, so its size is never asked.
    let viewport = Viewport::Fixed(ratatui::layout::Rect::new(0, 0, cols, rows));
    Terminal::with_options(
        CrosstermBackend::new(std::io::sink()),
        TerminalOptions { viewport },
    )
    .unwrap()
}

fn main() {
    for n in [1_000, 10_000] {
        bench(n);
    }
}

fn bench(n: usize) {
    let now = fixture::now();
    let snap = Arc::new(fixture::big_snapshot(n));
    let opts = AppOptions {
        read_only: false,
        color: true,
        ascii: false,
        log_path: None,
        ..Default::default()
    };

    // 1. Redraw of a changing screen: move the selection every frame (full diff work every time).
    let mut app = App::new(snap.clone(), opts.clone());
    let mut term = sink_terminal(200, 50);
    for _ in 0..50 {
        term.draw(|f| render(f, &app, now)).unwrap(); // warm up
    }
    let mut moved = 0;
    let mut samples = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        step(&mut app, &mut moved, n, now);
        let t = Instant::now();
        term.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats(&format!("200x50, {n} integrations, moving"), samples);

    // 1b. The idle screen: nothing changes but the clock (one second per frame), as the console's 1 Hz tick.
    let mut samples = Vec::with_capacity(FRAMES);
    for k in 0..FRAMES {
        let at = now + chrono::Duration::seconds(k as i64);
        let t = Instant::now();
        term.draw(|f| render(f, &app, at)).unwrap();
        samples.push(t.elapsed());
    }
    stats(&format!("200x50, {n} integrations, clock"), samples);

    // 1c. The same ticks as the console draws them: the header alone while no age on screen changes.
    let mut last = LastFrame::default();
    let mut samples = Vec::with_capacity(FRAMES);
    for k in 0..FRAMES {
        let at = now + chrono::Duration::seconds(k as i64);
        let t = Instant::now();
        draw_frame(&mut term, &app, &mut last, at, k > 0).unwrap();
        samples.push(t.elapsed());
    }
    stats(&format!("200x50, {n} integr., clock, header"), samples);

    // 2. A new snapshot every frame (sort + filter + draw): the engine publishing while the user watches.
    let mut samples = Vec::with_capacity(FRAMES / 4);
    for _ in 0..FRAMES / 4 {
        let t = Instant::now();
        app.apply_snapshot(snap.clone());
        term.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats(&format!("200x50, {n} integr., new snapshot"), samples);

    // 3. The 80x24 main screen and the detail view.
    let mut small = sink_terminal(80, 24);
    let mut samples = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        step(&mut app, &mut moved, n, now);
        let t = Instant::now();
        small.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats(&format!("80x24, {n} integrations, moving"), samples);

    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), now);
    let mut samples = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let t = Instant::now();
        term.draw(|f| render(f, &app, now)).unwrap();
        samples.push(t.elapsed());
    }
    stats("200x50, detail view", samples);
}
