//! The committed SDL must match the code. `WEIR_UPDATE_SCHEMA=1 cargo test -p weir-api`
//! rewrites `schemas/graphql/schema.graphql`.

use std::path::PathBuf;

#[test]
fn sdl_file_matches_code() {
    let path = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test"))
        .join("../../schemas/graphql/schema.graphql");
    let sdl = weir_api::sdl();
    if std::env::var_os("WEIR_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).expect("write schema.graphql");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == sdl,
        "{} is out of date: run `WEIR_UPDATE_SCHEMA=1 cargo test -p weir-api --test schema_sdl` \
         and commit the result",
        path.display()
    );
}
