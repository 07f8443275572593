//! The files of `pinwheel-io-driver` form layers, checked on its sources: `readiness` (a
//! source's readiness and wakers) at the bottom, `driver` (the poller and its table of sources)
//! above it, `registration` (what a socket holds) on top. A file names only the files below
//! it, so there is no circle between them.

use std::fs;
use std::path::Path;

/// Bottom first.
const LAYERS: [&str; 3] = ["readiness", "driver", "registration"];

/// The layers a file names through `crate::` (comments left out).
fn named(file: &str) -> Vec<&'static str> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(format!("{file}.rs"));
    let text = fs::read_to_string(path).unwrap();
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    LAYERS
        .into_iter()
        .filter(|layer| *layer != file && code.contains(&format!("crate::{layer}")))
        .collect()
}

#[test]
fn each_file_names_only_the_layers_below_it() {
    for (i, file) in LAYERS.iter().enumerate() {
        for other in named(file) {
            let j = LAYERS.iter().position(|l| *l == other).unwrap();
            assert!(
                j < i,
                "io-driver/src/{file}.rs names crate::{other}, a layer above it ({LAYERS:?}, bottom first)"
            );
        }
    }
}
