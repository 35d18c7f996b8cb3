//! Tests of eval-case images: resolving, staying inside the eval dir, refusing bombs and FIFOs.

use super::*;

#[test]
fn image_case_resolves_against_eval_dir() {
    let d = tempfile::tempdir().unwrap();
    tiny_png(d.path(), "images/x.png");
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"img\"\nimage = \"images/x.png\"\nexpect = [\"square\"]\nsafety = false\n",
    );
    let set = load_eval_set(d.path()).unwrap();
    assert_eq!(
        set.cases[0].input,
        CaseInput::Image(d.path().join("images/x.png"))
    );
}

#[test]
fn image_missing_or_undecodable() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "images/garbage.png", "this is not a png");
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"coffee-cup\"\nimage = \"images/nope.png\"\nsafety = false\n\n\
         [[case]]\nid = \"garbage\"\nimage = \"images/garbage.png\"\nsafety = false\n",
    );
    let e = load_err(d.path());
    let file = d.path().join("cases.toml").display().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert_eq!(
        lines[0],
        format!("{file}: case \"coffee-cup\": image images/nope.png not found")
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}: case \"garbage\": image images/garbage.png is not a readable image"
        )),
        "{e}"
    );
}

#[test]
fn images_must_stay_in_the_eval_dir() {
    let d = tempfile::tempdir().unwrap();
    let eval = d.path().join("eval");
    tiny_png(d.path(), "outside.png");
    tiny_png(&eval, "images/in.png");
    #[cfg(unix)]
    std::os::unix::fs::symlink(d.path().join("outside.png"), eval.join("images/link.png")).unwrap();
    // A link that stays inside is fine.
    #[cfg(unix)]
    std::os::unix::fs::symlink(eval.join("images/in.png"), eval.join("images/alias.png")).unwrap();
    write(
        &eval,
        "cases.toml",
        "[[case]]\nid = \"up\"\nimage = \"../outside.png\"\nsafety = false\n\n\
         [[case]]\nid = \"up-inside\"\nimage = \"images/../images/in.png\"\nsafety = false\n\n\
         [[case]]\nid = \"link\"\nimage = \"images/link.png\"\nsafety = false\n\n\
         [[case]]\nid = \"alias\"\nimage = \"images/alias.png\"\nsafety = false\n",
    );
    let e = load_err(&eval);
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.len() == 3 || cfg!(not(unix)), "{e}");
    assert!(
        lines[0].contains("case \"up\": image ../outside.png must not contain `..`"),
        "{e}"
    );
    assert!(
        lines[1].contains("case \"up-inside\"") && lines[1].contains("`..`"),
        "{e}"
    );
    #[cfg(unix)]
    assert!(
        lines[2].contains("case \"link\": image images/link.png leads outside the eval dir"),
        "{e}"
    );
    assert!(!e.contains("\"alias\""), "{e}");
}

#[cfg(unix)]
#[test]
fn fifo_image_and_case_file_do_not_block() {
    let d = tempfile::tempdir().unwrap();
    let mkfifo = |p: &Path| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    fs::create_dir_all(d.path().join("images")).unwrap();
    mkfifo(&d.path().join("images/fifo.png"));
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"fifo\"\nimage = \"images/fifo.png\"\nsafety = false\n",
    );
    let started = std::time::Instant::now();
    let e = load_err(d.path());
    assert!(e.contains("not a regular file (a FIFO)"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_bomb_sized_image_is_refused_from_its_header() {
    let d = tempfile::tempdir().unwrap();
    // A PNG header claiming 13000x13000: refused before any decoding.
    let p = d.path().join("images/bomb.png");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, png_header(13_000, 13_000)).unwrap();
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"bomb\"\nimage = \"images/bomb.png\"\nsafety = false\n",
    );
    let e = load_err(d.path());
    assert!(
        e.contains("image images/bomb.png is too large: 13000x13000 is 169.0 MP"),
        "{e}"
    );
}

/// A PNG that only has a header (IHDR for an 8-bit RGB image, an empty IDAT, IEND):
/// enough for its size to be read, nothing to decode.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[]);
    chunk(b"IEND", &[]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for b in bytes {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}
