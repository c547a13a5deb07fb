//! The wasm entry point: hydrates the server-rendered page so that it becomes interactive.

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Logging is best effort: a second initialisation is not an error worth reporting.
    let _ = console_log::init_with_level(log::Level::Warn);
    leptos::mount::hydrate_body(app::App);
    // Lets browser tests (and anyone curious) know the page is now interactive.
    let _ = js_sys::Reflect::set(
        &js_sys::global(),
        &"__portcullisHydrated".into(),
        &true.into(),
    );
}
