//! Tests of loading the eval set, by job: reading files and positions (`loading.rs`),
//! checking cases (`cases.rs`), images (`images.rs`).

use super::*;
use std::fs;
use std::path::{Path, PathBuf};

mod cases;
mod images;
mod loading;

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("eval")
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, content).unwrap();
    p
}

fn tiny_png(dir: &Path, rel: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::RgbImage::new(2, 2).save(&p).unwrap();
}

fn load_err(dir: &Path) -> String {
    match load_eval_set(dir) {
        Ok(set) => panic!("expected an error, loaded {} cases", set.cases.len()),
        Err(e) => e.0,
    }
}

const GOOD: &str = "[[case]]\nid = \"ok\"\ntext = \"A cat.\"\nexpect = [\"cat\"]\nsafety = false\n";
