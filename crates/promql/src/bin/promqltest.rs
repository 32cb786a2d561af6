//! Runs promqltest scripts: `promqltest FILE...`. Prints each failing case and a per-file
//! count, and ends with the line `N passed, M failed, K skipped`. Exits 1 if any case failed.

use std::path::Path;
use std::process::ExitCode;

use telltale_promql::promqltest::run_file;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: promqltest FILE...");
        return ExitCode::from(2);
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for f in &files {
        let r = run_file(Path::new(f));
        for x in &r.failures {
            println!("FAIL {}:{}: {}", r.name, x.line, x.query);
            println!("  expected: {}", x.expected);
            println!("  got: {}", x.got);
        }
        println!("{}: {} passed, {} failed, {} skipped", r.name, r.passed, r.failed, r.skipped);
        passed += r.passed;
        failed += r.failed;
        skipped += r.skipped;
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
