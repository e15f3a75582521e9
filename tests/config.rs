use std::path::Path;
#[test]
fn scratch() {
    let e = authwatch::config::load(Path::new("/tmp/cfgt/authwatch.toml"));
    match e { Ok(c) => println!("{c:#?}"), Err(e) => println!("{e}") }
}
