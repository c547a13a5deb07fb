// sqlx::migrate! embeds the migrations at compile time; rebuild when any of them changes,
// including when a new migration file is added.
fn main() {
    println!("cargo:rerun-if-changed=../../../migrations");
    println!("cargo:rerun-if-changed=../../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../../migrations/postgres");
}
