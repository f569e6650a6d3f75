//! The experiment config: TOML → checked config → the env it names, made.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    if let Ok(cfg) = hale_experiments::config::TrainConfig::from_toml_str(text, path) {
        let _ = hale_envs::make(&cfg.env, &cfg.env_config_json());
    }
});
